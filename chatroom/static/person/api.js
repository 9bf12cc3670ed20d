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

  async function getJson(path) {
    return common.readJson(await fetch(path, { credentials: "same-origin" }));
  }

  return {
    startConversation: () => postJson("/api/conversation"),
    sendText: (text) => postJson("/api/messages", { text }),
    pressButton: (buttonId) => postJson("/api/messages", { button: buttonId }),
    // Answers at once if there is news, else waits a while for an operator at a desk.
    leaveDesk: () => postJson("/api/desk/leave"),
    updates: (after) => getJson(`/api/updates?after=${encodeURIComponent(after)}`),
  };
})();
