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

  function applyState(state) {
    view.showHost(state.host);
    view.appendMessages(state.messages, chooseButton);
  }

  // Runs one request; the composer is always usable again afterwards, even on failure.
  async function run(request) {
    setBusy(true);
    view.showStatus("");
    try {
      applyState(await request());
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

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    // Keep the draft until the server has it, so a failed send loses nothing.
    if (await run(() => api.sendText(text))) input.value = "";
  });

  run(api.startConversation);
})();
