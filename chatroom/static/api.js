// Talks to the chatroom's JSON API; the server owns the conversation and its routing.
"use strict";

const api = (() => {
  async function postJson(path, body) {
    return readJson(await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body || {}),
    }));
  }

  async function getJson(path) {
    return readJson(await fetch(path, { credentials: "same-origin" }));
  }

  async function readJson(response) {
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const message = (data && data.error) || `The chatroom answered ${response.status}.`;
      throw new Error(message);
    }
    return data;
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
