// The operator console: the queue and the conversations bots have, one conversation at a time,
// replies, hand-backs, takeovers and notes. Every piece of text from people, bots or operators is
// set with textContent.
"use strict";

(() => {
  const RETRY_MS = 3000;
  // While the operator types, the person is told at most this often (each lasts about 5 s there).
  const TYPING_EVERY_MS = 2000;

  const configProblem = document.getElementById("config-problem");
  const queueList = document.getElementById("queue-list");
  const queueEmpty = document.getElementById("queue-empty");
  const botsList = document.getElementById("bots-list");
  const botsEmpty = document.getElementById("bots-empty");
  const panel = document.getElementById("conversation");
  const fromLine = document.getElementById("conversation-from");
  const reasonLine = document.getElementById("conversation-reason");
  const metaLine = document.getElementById("conversation-meta");
  const contextPanel = document.getElementById("context");
  const contextRoute = document.getElementById("context-route");
  const contextFields = document.getElementById("context-fields");
  const transcript = document.getElementById("transcript");
  const statusLine = document.getElementById("desk-status");
  const replyForm = document.getElementById("reply");
  const deskActions = document.getElementById("desk-actions");
  const watchActions = document.getElementById("watch-actions");
  const watchLine = document.getElementById("watch-line");
  const takeOverChoice = document.getElementById("take-over-choice");
  const takeOverDesk = document.getElementById("take-over-desk");
  const takeOverButton = document.getElementById("take-over-button");
  const noteForm = document.getElementById("note-form");
  const noteInput = document.getElementById("note-input");
  const replyInput = document.getElementById("reply-input");
  const replyAs = document.getElementById("reply-as");
  const takeButton = document.getElementById("take-button");
  const handBackHost = document.getElementById("hand-back-host");
  const handBackButton = document.getElementById("hand-back-button");
  const closeButton = document.getElementById("close-button");
  const presenceChoice = document.getElementById("presence");
  const operatorList = document.getElementById("operator-list");

  // The open conversation ({id, cursor, live, data}); the live stream follows it.
  let current = null;
  let stream = null;
  // When the person was last told this operator is typing in the open conversation (0: not since).
  let typingSentAt = 0;

  const { element } = common;

  function since(seconds) {
    const minutes = Math.floor(seconds / 60);
    if (minutes < 1) return `${Math.max(0, Math.floor(seconds))} s`;
    if (minutes < 60) return `${minutes} min`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  async function call(method, path, body) {
    const options = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    if (response.status === 401) {
      window.location.assign("/desk/login");
      throw new Error("Logged out.");
    }
    return common.readJson(response);
  }

  function showStatus(text) {
    statusLine.textContent = text || "";
    statusLine.hidden = !text;
  }

  // A list entry that opens its conversation.
  function openButton(conversationId) {
    const button = element("button", "queue-open");
    button.type = "button";
    button.dataset.conversationId = conversationId;
    if (current && current.id === conversationId) button.classList.add("selected");
    button.addEventListener("click", () => openConversation(conversationId));
    return button;
  }

  function renderQueue(data) {
    queueList.replaceChildren();
    queueEmpty.hidden = data.conversations.length > 0;
    for (const stay of data.conversations) {
      const item = element("li", "queue-item");
      const button = openButton(stay.conversation_id);
      button.appendChild(element("strong", "", stay.from_host.title));
      button.appendChild(element("span", "queue-reason", stay.reason || "no reason given"));
      const state = stay.status === "waiting" ? "waiting" : "answered";
      const taken = stay.taken_by ? ` · taken by ${stay.taken_by}` : "";
      button.appendChild(element("span", `queue-meta ${state}`, `${state} ${since(data.now - stay.opened_at)}${taken}`));
      if (stay.last_text) button.appendChild(element("span", "queue-last", stay.last_text));
      item.appendChild(button);
      queueList.appendChild(item);
    }
  }

  // Conversations a bot has had lately: anyone may watch one, read-only, and take it over.
  function renderBots(data) {
    botsList.replaceChildren();
    const bots = data.bots || [];
    botsEmpty.hidden = bots.length > 0;
    botsEmpty.textContent = `No conversation with a bot in the last ${Math.round(data.watch_minutes || 0)} min.`;
    for (const entry of bots) {
      const item = element("li", "queue-item bot-item");
      const button = openButton(entry.conversation_id);
      button.appendChild(element("strong", "", entry.host.title));
      const who = entry.last.role === "user" ? "Person" : entry.last.role === "bot" ? entry.host.title : "Notice";
      button.appendChild(element("span", "queue-last", `${who}: ${entry.last.text}`));
      button.appendChild(element("span", "queue-meta", `active ${since(data.now - entry.active_at)} ago · started ${since(data.now - entry.started_at)} ago`));
      item.appendChild(button);
      botsList.appendChild(item);
    }
  }

  // Every operator and whether they are online, away or offline (not seen for 30 s).
  function renderOperators(operators) {
    operatorList.replaceChildren();
    for (const person of operators || []) {
      const item = element("li", "operator");
      item.dataset.operator = person.name;
      item.appendChild(element("span", "operator-name", person.name));
      item.appendChild(element("span", `operator-state ${person.state}`, person.state));
      operatorList.appendChild(item);
    }
  }

  // A broken edit of handoff_config.yml: the last good config still serves; say what is wrong.
  function showConfigProblem(problem) {
    configProblem.hidden = !problem;
    configProblem.textContent = problem
      ? `handoff_config.yml has a problem, so the last good version is still in force: ${problem}`
      : "";
  }

  function showQueue(data) {
    showConfigProblem(data.config_problem);
    renderQueue(data);
    renderBots(data);
    renderOperators(data.operators);
  }

  function speaker(message, titles) {
    if (message.role === "user") return "Person";
    if (message.role === "notice") return "";
    const title = titles[message.host] || message.host || "";
    return message.sender ? `${message.sender} (${title})` : title;
  }

  function renderMessage(message, data) {
    const stay = data.live ? data.stay : null;
    const before = stay && message.id <= stay.handoff_message_id;
    const item = element("li", `line line-${message.role}${before ? " line-before" : ""}`);
    item.dataset.messageId = message.id;
    const who = speaker(message, data.titles);
    if (who) item.appendChild(element("span", "line-who", who));
    if (message.text) item.appendChild(element("p", "line-text", message.text));
    if (message.image) item.appendChild(element("p", "line-extra", `[image] ${message.image}`));
    if (Array.isArray(message.buttons) && message.buttons.length) {
      item.appendChild(element("p", "line-extra", `[buttons] ${message.buttons.map((b) => b.title).join(" | ")}`));
    }
    return item;
  }

  // Transcript lines are kept in order by [message id, 0, 0]; a note by [the message it follows, 1, note id].
  function orderOf(node) {
    return node.dataset.order.split(",").map(Number);
  }

  function comesBefore(first, second) {
    const at = first.findIndex((value, index) => value !== second[index]);
    return at >= 0 && first[at] < second[at];
  }

  function place(node, order) {
    node.dataset.order = order.join(",");
    const later = [...transcript.children].find((child) => comesBefore(order, orderOf(child)));
    transcript.insertBefore(node, later || null);
  }

  // Messages can arrive twice (an action's answer and the stream); each id is shown once, in id order.
  function addMessages(data, messages) {
    for (const message of messages) {
      if (transcript.querySelector(`[data-message-id="${Number(message.id)}"]`)) continue;
      place(renderMessage(message, data), [message.id, 0, 0]);
      current.cursor = Math.max(current.cursor, message.id);
    }
    transcript.lastElementChild?.scrollIntoView({ block: "end" });
  }

  // Notes operators leave for each other, in the transcript where they were written; never sent to the person.
  function addNotes(notes) {
    for (const note of notes || []) {
      if (transcript.querySelector(`[data-note-id="${Number(note.id)}"]`)) continue;
      const item = element("li", "line line-note");
      item.dataset.noteId = note.id;
      item.appendChild(element("span", "line-who", `Note from ${note.operator} · operators only`));
      item.appendChild(element("p", "line-text", note.text));
      place(item, [note.after_message_id, 1, note.id]);
    }
  }

  // A conversation at a desk shows the reply and desk controls; one a bot has, read-only, shows "Take over".
  function renderHeader(data) {
    const stay = data.live ? data.stay : null;
    if (stay) {
      fromLine.textContent = `From ${stay.from_host.title}`;
      reasonLine.textContent = stay.reason ? `“${stay.reason}”` : "no reason given";
    } else {
      fromLine.textContent = `With ${data.host.title}`;
      reasonLine.textContent = data.with_bot ? "read-only" : "";
    }
    const parts = [];
    if (stay) parts.push(`arrived ${since(data.now - stay.opened_at)} ago`);
    if (stay && stay.taken_by) parts.push(`taken by ${stay.taken_by}`);
    parts.push(data.live ? `now with ${data.host.title}` : `now with ${data.host.title} (not at a desk)`);
    metaLine.textContent = parts.join(" · ");
    replyForm.hidden = !data.live;
    deskActions.hidden = !data.live;
    watchActions.hidden = !data.with_bot;
    renderTakeOver(data);
    renderHandBack(data, stay);
    for (const control of [replyInput, replyAs, takeButton, handBackHost, handBackButton, closeButton]) {
      control.disabled = !data.live;
    }
  }

  // Offered only while the person is at a desk: the host they came from first, or the operator's choice.
  function renderHandBack(data, stay) {
    const choice = stay ? handBackHost.value || stay.from_host.id : "";
    handBackHost.replaceChildren();
    if (!stay) return;
    for (const host of data.hand_back_to) {
      const option = element("option", "", host.title);
      option.value = host.id;
      handBackHost.appendChild(option);
    }
    handBackHost.value = choice;
  }

  function renderTakeOver(data) {
    watchLine.textContent = `The person is talking to ${data.host.title}; you only watch.`;
    const choice = takeOverDesk.value;
    takeOverDesk.replaceChildren();
    for (const desk of data.desks || []) {
      const option = element("option", "", desk.title);
      option.value = desk.id;
      takeOverDesk.appendChild(option);
    }
    if (choice) takeOverDesk.value = choice;
    // With one desk there is nothing to choose.
    takeOverChoice.hidden = (data.desks || []).length < 2;
    takeOverButton.disabled = !data.with_bot || !(data.desks || []).length;
  }

  // What the latest handoff told about the person (the envelope as stored: masked unless the host is trusted).
  function renderContext(context, now) {
    contextFields.replaceChildren();
    contextPanel.hidden = !context;
    if (!context) return;
    contextRoute.textContent = `Handoff from ${context.from_host.title} to ${context.to_host.title}, ${since(now - context.at)} ago`;
    const slots = Object.entries(context.slots || {});
    const rows = [
      ["Reason", context.reason || "unspecified"],
      ["Summary", context.summary],
      ["Request", context.request],
    ];
    for (const [label, value] of rows) {
      if (!value) continue;
      contextFields.appendChild(element("dt", "", label));
      contextFields.appendChild(element("dd", `context-${label.toLowerCase()}`, value));
    }
    if (!slots.length) return;
    const list = element("ul", "context-slots");
    for (const [name, value] of slots) list.appendChild(element("li", "", `${name}: ${value}`));
    const cell = element("dd", "context-slots-cell");
    cell.appendChild(list);
    contextFields.appendChild(element("dt", "", "Slots"));
    contextFields.appendChild(cell);
  }

  function apply(data) {
    if (!current || data.conversation_id !== current.id) return;
    current.live = data.live;
    current.data = data;
    renderHeader(data);
    renderContext(data.context, data.now);
    addMessages(data, data.messages || []);
    addNotes(data.notes);
  }

  // One live stream: the queue and operators, and the open conversation's messages and state.
  // The browser reconnects by itself (with Last-Event-ID) after a drop; a refusal is retried here.
  function listen() {
    if (stream) stream.close();
    const params = new URLSearchParams();
    if (current) {
      params.set("conversation", current.id);
      params.set("after", current.cursor);
    }
    stream = new EventSource(`/desk/api/events?${params}`);
    stream.addEventListener("queue", (event) => showQueue(JSON.parse(event.data)));
    stream.addEventListener("conversation", (event) => apply(JSON.parse(event.data)));
    stream.addEventListener("message", (event) => {
      if (current && current.data) addMessages(current.data, [JSON.parse(event.data)]);
    });
    stream.addEventListener("open", () => showStatus(""));
    stream.addEventListener("error", () => {
      if (stream.readyState !== EventSource.CLOSED) return;
      showStatus("Reconnecting…");
      setTimeout(listen, RETRY_MS);
    });
  }

  async function openConversation(conversationId) {
    current = { id: conversationId, cursor: 0, live: false, data: null };
    typingSentAt = 0;
    panel.hidden = false;
    transcript.replaceChildren();
    renderContext(null);
    handBackHost.replaceChildren();
    takeOverDesk.replaceChildren();
    showStatus("");
    for (const button of queueList.querySelectorAll(".queue-open")) {
      button.classList.toggle("selected", button.dataset.conversationId === conversationId);
    }
    try {
      apply(await call("GET", `/desk/api/conversations/${encodeURIComponent(conversationId)}`));
    } catch (error) {
      showStatus(error.message);
      return;
    }
    listen();
  }

  // Runs one action on the open conversation; controls are usable again afterwards, even on failure.
  async function act(path, body) {
    if (!current) return false;
    const conversation = current;
    showStatus("");
    try {
      apply(await call("POST", `/desk/api/conversations/${encodeURIComponent(conversation.id)}/${path}?after=${conversation.cursor}`, body));
      return true;
    } catch (error) {
      showStatus(error.message);
      return false;
    }
  }

  // Tells the person someone is typing: at most every TYPING_EVERY_MS, and once more when the draft is emptied.
  function sendTyping(typing) {
    if (!current || !current.live) return;
    call("POST", `/desk/api/conversations/${encodeURIComponent(current.id)}/typing`, { as: replyAs.value, typing })
      .catch(() => {});  // Only a hint: a lost one is not worth an error line.
  }

  replyInput.addEventListener("input", () => {
    const now = Date.now();
    if (replyInput.value.trim()) {
      if (now - typingSentAt < TYPING_EVERY_MS) return;
      typingSentAt = now;
      sendTyping(true);
    } else if (typingSentAt) {
      typingSentAt = 0;
      sendTyping(false);
    }
  });

  replyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = replyInput.value.trim();
    if (!text) return;
    // Keep the draft until the desk has it, so a failed send loses nothing.
    if (await act("messages", { text, as: replyAs.value })) {
      replyInput.value = "";
      typingSentAt = 0;  // The message ended the indicator on the person's page.
    }
    replyInput.focus();
  });

  presenceChoice.addEventListener("change", async () => {
    try {
      renderOperators((await call("POST", "/desk/api/presence", { state: presenceChoice.value })).operators);
    } catch (error) {
      showStatus(error.message);
    }
  });
  noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = noteInput.value.trim();
    if (!text) return;
    if (await act("notes", { text })) noteInput.value = "";
    noteInput.focus();
  });
  takeOverButton.addEventListener("click", () => act("take-over", { desk_id: takeOverDesk.value || null }));
  takeButton.addEventListener("click", () => act("take", {}));
  handBackButton.addEventListener("click", () => act("hand-back", { host_id: handBackHost.value }));
  closeButton.addEventListener("click", () => act("close", {}));

  listen();
})();
