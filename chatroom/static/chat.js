// Wires the composer and the buttons to the API and keeps the page in step with the server.
"use strict";

(() => {
  const composer = document.getElementById("composer");
  const input = document.getElementById("message-input");
  const sendButton = document.getElementById("send-button");

  function setBusy(busy) {
    input.disabled = busy;
    sendButton.disabled = busy;
    view.showStatus(busy ? "…" : "");
  }

  function applyState(state) {
    view.showHost(state.host);
    view.appendMessages(state.messages, chooseButton);
  }

  async function run(request) {
    setBusy(true);
    try {
      applyState(await request());
    } catch (error) {
      setBusy(false);
      view.showStatus(error.message);
      return false;
    } finally {
      if (input.disabled) setBusy(false);
      input.focus();
    }
    return true;
  }

  function chooseButton(choice) {
    view.disableOldButtons();
    run(() => api.pressButton(choice.id));
  }

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    // Keep the draft until the server has it, so a failed send loses nothing.
    if (await run(() => api.sendText(text))) input.value = "";
  });

  run(api.startConversation);
})();
