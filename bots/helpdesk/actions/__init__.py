"""Custom actions of the Helpdesk Assistant; rasa-sdk imports every module here."""
