// Wires the composer and the buttons to the API and keeps the page in step with the server.
"use strict";

(() => {
  const composer = document.getElementById("composer");
  const input = document.getElementById("message-input");
  const sendButton = document.getElementById("send-button");

  function setBusy(busy) {
    input.disabled = busy;
    sendButton.disabled = busy;
  }

  const RETRY_MS = 3000;
  // The last message id every earlier one is known up to; only polls and the first load move it,
  // so a turn's answer that skips ahead can never hide an operator's message from the poll.
  let cursor = 0;
  let polling = false;

  function applyState(state) {
    view.showHost(state.host);
    view.appendMessages(state.messages, chooseButton);
  }

  function advance(state) {
    for (const message of state.messages) cursor = Math.max(cursor, message.id);
  }

  // Keeps one long poll running while the person is with a human desk.
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      for (;;) {
        let state;
        try {
          state = await api.updates(cursor);
        } catch (error) {
          view.showStatus(error.message);
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          continue;
        }
        applyState(state);
        advance(state);
        view.showDesk(state.desk);
        view.showTyping(state.typing);
        if (state.messages.length) view.showStatus("");
        if (!state.live) break;
      }
    } finally {
      polling = false;
    }
  }

  // Runs one request; the composer is always usable again afterwards, even on failure.
  async function run(request) {
    setBusy(true);
    view.showStatus("");
    try {
      applyState(await request());
      poll();
      return true;
    } catch (error) {
      view.showStatus(error.message);
      return false;
    } finally {
      setBusy(false);
      input.focus();
    }
  }

  function chooseButton(choice) {
    view.disableAllButtons();
    run(() => api.pressButton(choice.id));
  }

  document.getElementById("leave-desk").addEventListener("click", () => {
    view.showDesk(null);
    view.showTyping(null);
    run(api.leaveDesk);
  });

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    // Keep the draft until the server has it, so a failed send loses nothing.
    if (await run(() => api.sendText(text))) input.value = "";
  });

  run(async () => {
    const state = await api.startConversation();
    advance(state);
    return state;
  });
})();
