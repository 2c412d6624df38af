// Refreshes the names and figures once a second from /api/status (the video refreshes itself).
"use strict";

function text(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = value;
}

function showNames(detections) {
  const list = document.getElementById("names");
  const items = detections.length
    ? detections.map((d) => [d.name, d.known ? "known" : "unknown"])
    : [["nobody", "none"]];
  list.replaceChildren(...items.map(([name, cls]) => {
    const li = document.createElement("li");
    li.textContent = name;
    li.className = cls;
    return li;
  }));
}

async function refresh() {
  try {
    const response = await fetch("api/status", { cache: "no-store" });
    if (response.status === 401) {  // the session ended (logout elsewhere, expiry, restart)
      window.location.assign("login");
      return;
    }
    const status = await response.json();
    text("model-version", status.model.version || "none");
    text("input-fps", status.source.input_fps);
    text("recognition-rate", status.recognition.rate);
    text("signal", status.source.state);
    text("people", status.model.people.join(", ") || "none");
    showNames(status.detections);
  } catch (error) {
    text("signal", "server unreachable");
  }
}

setInterval(refresh, 1000);
refresh();
