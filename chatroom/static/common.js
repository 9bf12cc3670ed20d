// Helpers every page shares. Text from people, bots or operators only ever goes through textContent.
"use strict";

const common = (() => {
  // A new element with a class and plain text (never HTML).
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // The JSON body of a response; a refusal becomes an Error carrying the server's sentence.
  async function readJson(response) {
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) throw new Error((data && data.error) || `The chatroom answered ${response.status}.`);
    return data;
  }

  return { element, readJson };
})();
