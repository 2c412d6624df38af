// Refreshes the names and figures once a second from /api/status (the videos refresh themselves);
// a click on a camera makes it the large one of the grid. An operator may name an Unknown face:
// its picture becomes a training photo (POST api/tracks/<track>/enroll).
"use strict";

function text(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = value;
}

const OPERATOR = document.body.dataset.role === "operator";

function item(name, cls, camera, track) {
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = name;
  li.append(label);
  li.className = cls;
  if (track !== null && track !== undefined) li.dataset.track = track;
  if (camera) {
    const where = document.createElement("span");
    where.className = "where";
    where.textContent = ` · ${camera}`;
    li.append(where);
  }
  if (OPERATOR && cls === "unknown" && track !== null && track !== undefined) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "name-this";
    button.textContent = "Name this person";
    button.addEventListener("click", () => startNaming(track));
    li.append(" ", button);
  }
  return li;
}

function startNaming(track) {
  const form = document.getElementById("naming");
  form.dataset.track = track;
  text("naming-track", track);
  text("naming-result", "");
  form.hidden = false;
  document.getElementById("naming-name").focus();
}

async function saveNaming(event) {
  event.preventDefault();
  const form = document.getElementById("naming");
  const name = document.getElementById("naming-name").value.trim();
  const response = await fetch(`api/tracks/${encodeURIComponent(form.dataset.track)}/enroll`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Edgeface-Request": "1" },
    body: JSON.stringify({ name }),
  });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    text("naming-result", `Stored a photo of ${body.name}: the next retrain learns it (see People).`);
    form.hidden = true;
    form.reset();
  } else {
    text("naming-result", `Not stored: ${body.error || response.status}`);
  }
}

function showNames(cameras) {
  const list = document.getElementById("names");
  const several = cameras.length > 1;
  const items = cameras.flatMap((camera) =>
    camera.detections.map((d) =>
      item(d.name, d.known ? "known" : "unknown", several ? camera.name : null, d.track)));
  list.replaceChildren(...(items.length ? items : [item("nobody", "none", null)]));
}

function showCameras(cameras) {
  for (const camera of cameras) {
    const figure = document.querySelector(`figure[data-camera="${CSS.escape(camera.name)}"]`);
    if (!figure) continue;
    figure.querySelector(".state").textContent = camera.source.state;
    figure.querySelector(".names").textContent = camera.names.join(", ") || "nobody";
  }
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
    showNames(status.cameras);
    showCameras(status.cameras);
  } catch (error) {
    text("signal", "server unreachable");
  }
}

document.getElementById("cameras").addEventListener("click", (event) => {
  const figure = event.target.closest("figure.camera");
  const grid = document.getElementById("cameras");
  if (!figure || !grid.classList.contains("grid")) return;
  const large = !figure.classList.contains("large");
  for (const other of grid.querySelectorAll("figure.camera")) other.classList.remove("large");
  figure.classList.toggle("large", large);
  grid.classList.toggle("focused", large);
});

document.getElementById("naming").addEventListener("submit", saveNaming);
document.getElementById("naming-cancel").addEventListener("click", () => {
  document.getElementById("naming").hidden = true;
});

setInterval(refresh, 1000);
refresh();
