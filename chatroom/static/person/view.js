// Renders messages. Every piece of bot or host text goes through textContent, never HTML.
"use strict";

const view = (() => {
  const messageList = document.getElementById("messages");
  const hostTitle = document.getElementById("host-title");
  const statusLine = document.getElementById("status");
  const deskBar = document.getElementById("desk-bar");
  const deskInfo = document.getElementById("desk-info");
  const leaveButton = document.getElementById("leave-desk");
  const typingLine = document.getElementById("typing");
  let typingTimer = null;
  // Only http(s) addresses become links, never javascript:, data: or anything else.
  const WEB_ADDRESS = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)]/gi;

  const { element } = common;

  function isWebUrl(value) {
    try {
      const url = new URL(String(value), window.location.href);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch (_) {
      return false;
    }
  }

  // Web addresses in a message become links; everything else stays plain text.
  function textWithLinks(text) {
    const source = String(text);
    const paragraph = element("p", "message-text");
    let last = 0;
    for (const match of source.matchAll(WEB_ADDRESS)) {
      paragraph.appendChild(document.createTextNode(source.slice(last, match.index)));
      const link = element("a", "message-link", match[0]);
      link.href = match[0];
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      paragraph.appendChild(link);
      last = match.index + match[0].length;
    }
    paragraph.appendChild(document.createTextNode(source.slice(last)));
    return paragraph;
  }

  // Only the reply after the person's last message can be answered with a button.
  function disableOldButtons() {
    const userMessages = messageList.querySelectorAll(".message-user");
    const lastUser = userMessages[userMessages.length - 1];
    for (const button of messageList.querySelectorAll("button.choice")) {
      const item = button.closest(".message");
      if (lastUser && item.compareDocumentPosition(lastUser) & Node.DOCUMENT_POSITION_FOLLOWING) {
        button.disabled = true;
      }
    }
  }

  function disableAllButtons() {
    for (const button of messageList.querySelectorAll("button.choice")) button.disabled = true;
  }

  function renderMessage(message, onChoice) {
    const item = element("li", `message message-${message.role}`);
    item.dataset.messageId = message.id;
    // An operator writing as themselves is named; one writing as the assistant is not.
    if (message.sender) item.appendChild(element("span", "message-sender", message.sender));
    if (message.text) item.appendChild(textWithLinks(message.text));
    if (message.image && isWebUrl(message.image)) {
      const image = element("img", "message-image");
      image.src = message.image;
      image.alt = "";
      image.referrerPolicy = "no-referrer";
      item.appendChild(image);
    }
    if (Array.isArray(message.buttons) && message.buttons.length) {
      const choices = element("div", "choices");
      for (const choice of message.buttons) {
        const button = element("button", "choice", choice.title);
        button.type = "button";
        button.addEventListener("click", () => onChoice(choice));
        choices.appendChild(button);
      }
      item.appendChild(choices);
    }
    return item;
  }

  // A message can come twice (a turn's answer and a poll); each id is shown once, in id order.
  function appendMessages(messages, onChoice) {
    for (const message of messages) {
      if (messageList.querySelector(`[data-message-id="${Number(message.id)}"]`)) continue;
      const later = [...messageList.children].find((item) => Number(item.dataset.messageId) > message.id);
      messageList.insertBefore(renderMessage(message, onChoice), later || null);
    }
    disableOldButtons();
    messageList.lastElementChild?.scrollIntoView({ block: "end" });
  }

  function showHost(host) {
    hostTitle.textContent = host.title;
    document.title = `Chatroom · ${host.title}`;
  }

  function showStatus(text) {
    statusLine.textContent = text || "";
    statusLine.hidden = !text;
  }

  function minutes(seconds) {
    return Math.max(1, Math.round(seconds / 60));
  }

  // While a human desk has the person: when it opens if it is closed, their place in the queue, a way back.
  function showDesk(desk) {
    deskBar.hidden = !desk;
    if (!desk) return;
    const parts = [];
    if (desk.opens) {
      parts.push(`${desk.title} opens ${desk.opens}.`);
    } else if (desk.operators_online === 0) {
      parts.push(`Nobody from ${desk.title} is online right now. Leave a message here: they will answer when they are back.`);
    } else if (desk.operators_online > 0) {
      parts.push(`${desk.title} is online.`);
    }
    if (desk.waiting && desk.position) parts.push(`You are number ${desk.position} in the queue.`);
    if (desk.waiting && desk.estimated_wait_seconds) parts.push(`Estimated wait: about ${minutes(desk.estimated_wait_seconds)} min.`);
    deskInfo.textContent = parts.join(" ");
    leaveButton.textContent = `Back to ${desk.back_to.title}`;
  }

  // "<name> is typing…" while an operator writes; gone when their message comes or the time runs out.
  function showTyping(typing) {
    clearTimeout(typingTimer);
    typingLine.hidden = !typing;
    if (!typing) {
      typingLine.textContent = "";
      return;
    }
    typingLine.textContent = `${typing.name} is typing…`;
    typingTimer = setTimeout(() => showTyping(null), Math.max(0, Number(typing.seconds_left) || 0) * 1000);
  }

  // A fresh conversation: nothing of the last one stays on the page.
  function clear() {
    messageList.replaceChildren();
    showDesk(null);
    showTyping(null);
    showStatus("");
  }

  return { appendMessages, clear, disableAllButtons, showDesk, showHost, showStatus, showTyping };
})();
