// The comparison page's two synced players (an ES module, no build step).
//
// Data: the JSON in #comparison-data — players.{baseline,replay} (duration, tracks with their
// audio and peaks URLs, turn regions) and rows (the aligned turns with each side's span).
// Each player is a wavesurfer.js instance over the page's own <audio> element, drawn from the
// server's precomputed peaks (no decoding in the browser), with one region per turn.
// Test hooks: window.voicereplay.{players, rows, active, mode, ready, syncLog, lastSwitch,
// seekRow, abSwitch, playBoth, playTurn, pause, setTrack}; rows carry data-row/data-turn.
import WaveSurfer from "./vendor/wavesurfer.esm.js";
import RegionsPlugin from "./vendor/regions.esm.js";

const data = JSON.parse(document.getElementById("comparison-data").textContent);
const SIDES = ["baseline", "replay"];
const COLORS = { caller: "rgba(46, 160, 67, 0.18)", agent: "rgba(56, 110, 220, 0.18)" };
const EPS = 0.005;

const state = { active: "baseline", mode: "single", stopAt: null, track: "mixed", last: {} };
const players = {};
const syncLog = []; // play both: each time one side made the other jump to its turn
let lastSwitch = null; // the last A/B switch: {from, to, at, row, position}
const other = (side) => (side === "baseline" ? "replay" : "baseline");
const spanOf = (row, side) => (row ? row[side] : null);

// The aligned row a side is in at time t: the last row of that side starting at or before t.
function rowAt(side, t) {
  let found = null;
  for (const row of data.rows) {
    const span = spanOf(row, side);
    if (span && span.start <= t + EPS) found = row;
  }
  return found;
}

// The nearest row at or before index k that the side has (dropped/inserted turns have none).
function rowWith(side, index) {
  for (let i = index; i >= 0; i--) if (spanOf(data.rows[i], side)) return data.rows[i];
  return null;
}

function format(t) {
  const m = Math.floor(t / 60);
  return `${m}:${(t - m * 60).toFixed(1).padStart(4, "0")}`;
}

function highlight() {
  document.querySelectorAll("tr.row.playing").forEach((el) => el.classList.remove("playing"));
  for (const side of SIDES) {
    const p = players[side];
    if (!p) continue;
    const row = rowAt(side, p.audio.currentTime);
    document.getElementById(`clock-${side}`).textContent = format(p.audio.currentTime);
    document.getElementById(`now-${side}`).textContent = row
      ? `${row.kind} ${row.number ?? ""}` : "";
    if (row && !p.audio.paused) {
      document.querySelector(`tr.row[data-row="${row.index}"]`)?.classList.add("playing");
    }
  }
  document.getElementById("ab-active").textContent = `(${state.active})`;
}

function seek(side, t) {
  const p = players[side];
  if (!p) return;
  const target = Math.max(0, Math.min(t, (p.audio.duration || t + 1) - EPS));
  p.audio.currentTime = target;
  state.last[side] = rowAt(side, target)?.index ?? null;
}

// "play both": when one side enters aligned row k, the other jumps to its own row k.
function onTime(side) {
  const p = players[side];
  const t = p.audio.currentTime;
  if (state.stopAt && side === state.stopAt.side && t >= state.stopAt.end) {
    p.audio.pause();
    state.stopAt = null;
  }
  const row = rowAt(side, t);
  const index = row ? row.index : null;
  if (index !== state.last[side]) {
    state.last[side] = index;
    const peer = other(side);
    if (state.mode === "both" && row && players[peer] && state.last[peer] !== index) {
      const span = spanOf(row, peer);
      if (span) {
        seek(peer, span.start);
        syncLog.push({ leader: side, row: index, position: span.start });
      }
    }
  }
  highlight();
}

function pause() {
  state.stopAt = null;
  for (const side of SIDES) players[side]?.audio.pause();
  state.mode = "single";
  highlight();
}

async function play(side) {
  state.active = side;
  try {
    await players[side].audio.play();
  } catch (err) {
    console.warn("playback refused", err);
  }
  highlight();
}

function seekRow(index) {
  const row = data.rows[index];
  state.stopAt = null;
  for (const side of SIDES) {
    const span = spanOf(row, side);
    if (span) seek(side, span.start);
  }
  highlight();
}

async function playTurn(side, index) {
  const row = data.rows[index];
  const span = spanOf(row, side);
  if (!span || !players[side]) return;
  pause();
  seek(side, span.start);
  state.stopAt = { side, end: span.end };
  await play(side);
}

async function playBoth() {
  state.stopAt = null;
  const lead = players[state.active] ? state.active : other(state.active);
  if (!players[lead]) return;
  const row = rowAt(lead, players[lead].audio.currentTime);
  const span = row ? spanOf(row, other(lead)) : null;
  if (span) seek(other(lead), span.start);
  state.mode = "both";
  await Promise.all(SIDES.filter((s) => players[s]).map((s) => players[s].audio.play()
    .catch((err) => console.warn("playback refused", err))));
  highlight();
}

// A/B: play the same moment of the other call — its aligned row, the same offset into it.
async function abSwitch(to) {
  const from = state.active;
  const target = to || other(from);
  if (!players[target] || !players[from]) return;
  if (target === from) return play(target);
  const t = players[from].audio.currentTime;
  const row = rowAt(from, t);
  const mine = spanOf(row, from);
  const theirsRow = row ? rowWith(target, row.index) : null;
  const theirs = spanOf(theirsRow, target);
  let position = 0;
  if (theirs) {
    const offset = mine && theirsRow === row ? Math.max(0, t - mine.start) : 0;
    position = theirs.start + Math.min(offset, Math.max(0, theirs.end - theirs.start));
  }
  pause();
  seek(target, position);
  lastSwitch = { from, to: target, at: t, row: row ? row.index : null, position };
  await play(target);
}

function addRegions(side) {
  const p = players[side];
  p.regions.clearRegions();
  for (const r of data.players[side].regions) {
    p.regions.addRegion({ start: r.start, end: r.end, color: COLORS[r.role],
      content: r.label, drag: false, resize: false, id: `${side}-row-${r.row}` });
  }
}

async function peaks(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

async function setTrack(name) {
  state.track = name;
  await Promise.all(SIDES.map(async (side) => {
    const p = players[side];
    const track = data.players[side].tracks[name];
    if (!p || !track) return;
    const at = p.audio.currentTime;
    const playing = !p.audio.paused;
    const wave = await peaks(track.peaks);
    await p.ws.load(track.audio, wave.peaks, wave.duration);
    addRegions(side);
    seek(side, at);
    if (playing) await p.audio.play().catch(() => {});
  }));
  highlight();
}

async function setup(side) {
  const audio = document.getElementById(`audio-${side}`);
  const track = data.players[side].tracks.mixed || Object.values(data.players[side].tracks)[0];
  if (!audio || !track) return;
  const regions = RegionsPlugin.create();
  const ready = new Promise((resolve) => {
    if (audio.readyState >= 1) resolve();
    else audio.addEventListener("loadedmetadata", () => resolve(), { once: true });
  });
  const wave = await peaks(track.peaks).catch(() => null);
  const ws = WaveSurfer.create({
    container: `#wave-${side}`, media: audio, height: 72, normalize: true,
    waveColor: side === "baseline" ? "#8a8f98" : "#7a8fc0", progressColor: "#333",
    cursorColor: "#c00", peaks: wave ? wave.peaks : undefined,
    duration: wave ? wave.duration : undefined, plugins: [regions],
  });
  players[side] = { ws, audio, regions, duration: wave ? wave.duration : null };
  window.voicereplay.players[side] = players[side];
  ws.on("ready", () => addRegions(side));
  if (wave) addRegions(side);
  ws.on("interaction", () => { state.active = side; });
  regions.on("region-clicked", (region, event) => {
    event.stopPropagation();
    const index = Number(region.id.split("-row-")[1]);
    seekRow(index);
  });
  ws.on("timeupdate", () => onTime(side)); // every animation frame while playing
  audio.addEventListener("play", () => { if (state.mode !== "both") state.active = side; });
  await ready;
}

function bind() {
  document.getElementById("play-both").addEventListener("click", playBoth);
  document.getElementById("pause").addEventListener("click", pause);
  document.getElementById("ab-switch").addEventListener("click", () => abSwitch());
  document.querySelectorAll("input[name=track]").forEach((input) => {
    input.addEventListener("change", () => setTrack(input.value));
  });
  document.querySelectorAll("button.play-turn").forEach((button) => {
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      playTurn(button.dataset.side, Number(button.dataset.row));
    });
  });
  document.querySelectorAll("tr.row").forEach((tr) => {
    tr.addEventListener("click", () => seekRow(Number(tr.dataset.row)));
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select") || event.ctrlKey
        || event.metaKey || event.altKey) return;
    if (event.key === " " && event.target.closest("button, audio")) return; // their own
    if (event.key === "x") abSwitch();
    else if (event.key === "a") abSwitch("baseline");
    else if (event.key === "b") abSwitch("replay");
    else if (event.key === " ") {
      event.preventDefault();
      const p = players[state.active];
      if (p && p.audio.paused) play(state.active); else if (p) pause();
    } else return;
  });
}

window.voicereplay = { players: {}, rows: data.rows, seekRow, abSwitch, playBoth, playTurn,
  pause, setTrack, rowAt, syncLog, get lastSwitch() { return lastSwitch; },
  get active() { return state.active; }, get mode() { return state.mode; } };
bind();
window.voicereplay.ready = Promise.all(SIDES.map(setup)).then(() => {
  document.body.dataset.playersReady = "true";
  highlight();
});
