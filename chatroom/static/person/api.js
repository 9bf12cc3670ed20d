// Talks to the chatroom's JSON API; the server owns the conversation and its routing.
"use strict";

const api = (() => {
  async function postJson(path, body) {
    return common.readJson(await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body || {}),
    }));
  }

  return {
    startConversation: () => postJson("/api/conversation"),
    sendText: (text) => postJson("/api/messages", { text }),
    pressButton: (buttonId) => postJson("/api/messages", { button: buttonId }),
    leaveDesk: () => postJson("/api/desk/leave"),
    // Ends this conversation (and any wait for a person) for good; the answer is a new one.
    startOver: () => postJson("/api/start-over"),
    // Server-Sent Events: transcript messages (with their ids) and the state around them.
    liveEvents: (after) => new EventSource(`/api/events?after=${encodeURIComponent(after)}`),
  };
})();
