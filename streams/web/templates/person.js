// Improves the page, which works without it: Remove opens a dialog and the list updates in place
// instead of going through the removal form's own page.
(() => {
  const root = document.getElementById("person");
  root.classList.add("scripted");
  const personId = root.dataset.personId;
  const notice = document.getElementById("notice");
  const dialog = document.getElementById("remove-dialog");
  const actor = document.getElementById("actor");
  const reason = document.getElementById("reason");
  let target = null;
  actor.value = localStorage.getItem("optouts-actor") || "";

  function say(text, isError) {
    notice.textContent = text;
    notice.className = isError ? "error" : "";
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button, a.remove");
    if (!button) return;
    if (button.id === "manage") {
      const on = root.classList.toggle("managing");
      button.setAttribute("aria-pressed", String(on));
      button.textContent = on ? "Done" : "Manage";
    } else if (button.classList.contains("remove")) {
      event.preventDefault();
      const row = button.closest("tr");
      target = { sender: row.dataset.sender, phone: row.dataset.phone };
      document.getElementById("remove-sender").textContent = target.sender;
      document.getElementById("remove-phone").textContent = target.phone;
      reason.value = "";
      dialog.showModal();
      (actor.value ? reason : actor).focus();
    }
  });

  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "remove" || !target) return;
    localStorage.setItem("optouts-actor", actor.value);
    const url = `/people/${encodeURIComponent(personId)}/sms-opt-outs/${encodeURIComponent(target.sender)}`;
    try {
      const response = await fetch(url, {
        method: "DELETE",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ actor: actor.value, reason: reason.value, phone: target.phone }),
      });
      const answer = await response.json();
      if (!response.ok) {
        say(answer.error || `The removal failed (${response.status}).`, true);
        return;
      }
      await refresh();
      say(`Removed ${target.sender} for ${target.phone}.` +
          (answer.list_updated ? "" : " The list may take a moment to show it."), false);
    } catch (error) {
      say(`The removal failed: ${error}`, true);
    }
  });

  async function refresh() {
    // The server renders the page; swap in its new sections rather than reloading.
    const html = await (await fetch(location.pathname, { headers: { Accept: "text/html" } })).text();
    const fresh = new DOMParser().parseFromString(html, "text/html");
    for (const id of ["opt-outs", "history"]) {
      root.querySelector(`#${id} tbody`).replaceWith(fresh.querySelector(`#${id} tbody`));
    }
  }
})();
