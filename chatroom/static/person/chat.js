// Wires the composer and the buttons to the API and keeps the page in step with the server.
"use strict";

(() => {
  const composer = document.getElementById("composer");
  const input = document.getElementById("message-input");
  const sendButton = document.getElementById("send-button");
  const leaveButton = document.getElementById("leave-desk");
  const startOverButton = document.getElementById("start-over");

  const RETRY_MS = 3000;
  const START_OVER_QUESTION =
    "Start over? This conversation ends, and it will no longer be shown in this browser.";
  // The last message id the live stream (or the first load) delivered; a reopened stream starts after it.
  // Answers to the person's own turns don't move it, so they can never hide an operator's message.
  let cursor = 0;
  let stream = null;

  // While a request runs, nothing else may start: an answer for the old conversation could
  // otherwise land on the page of a new one.
  function setBusy(busy) {
    input.disabled = busy;
    sendButton.disabled = busy;
    startOverButton.disabled = busy;
  }

  function showMessages(messages) {
    view.appendMessages(messages, chooseButton);
  }

  function showState(state) {
    view.showHost(state.host);
    view.showDesk(state.desk);
    view.showTyping(state.typing);
  }

  // One live stream per page: operators' replies, typing, hand-backs and notices arrive here.
  // The browser reconnects by itself (with Last-Event-ID) after a drop; a refusal is retried here.
  function listen() {
    if (stream) stream.close();
    stream = api.liveEvents(cursor);
    stream.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      cursor = Math.max(cursor, message.id);
      showMessages([message]);
    });
    stream.addEventListener("state", (event) => showState(JSON.parse(event.data)));
    stream.addEventListener("open", () => view.showStatus(""));
    stream.addEventListener("error", () => {
      if (stream.readyState !== EventSource.CLOSED) return;
      view.showStatus("Reconnecting…");
      setTimeout(listen, RETRY_MS);
    });
  }

  // Runs one request; the composer is always usable again afterwards, even on failure.
  async function run(request) {
    setBusy(true);
    view.showStatus("");
    try {
      const state = await request();
      view.showHost(state.host);
      showMessages(state.messages);
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

  leaveButton.addEventListener("click", () => {
    view.showDesk(null);
    view.showTyping(null);
    run(api.leaveDesk);
  });

  // A new conversation from the server's answer: the page, the cursor and the stream start afresh.
  async function begin(request) {
    const state = await request();
    view.clear();
    cursor = 0;
    for (const message of state.messages) cursor = Math.max(cursor, message.id);
    listen();
    return state;
  }

  startOverButton.addEventListener("click", async () => {
    if (!window.confirm(START_OVER_QUESTION)) return;
    // The stream of the conversation being left must not add anything to the new one.
    if (stream) stream.close();
    if (!(await run(() => begin(api.startOver)))) listen();
  });

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    // Keep the draft until the server has it, so a failed send loses nothing.
    if (await run(() => api.sendText(text))) input.value = "";
  });

  run(() => begin(api.startConversation)).then((started) => {
    if (!started) setTimeout(() => window.location.reload(), RETRY_MS);
  });
})();
