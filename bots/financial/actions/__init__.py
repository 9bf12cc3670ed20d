"""Custom actions of the Financial Assistant; rasa-sdk imports every module here."""
