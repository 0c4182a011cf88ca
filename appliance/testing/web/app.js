// A browser participant for the appliance's rooms, on janus.js.
// It follows the engine's naming in the VideoRoom (see docs/architecture.md):
// the logged-in user is a participant "u:<user>:<login>.1" that never
// publishes; the camera and microphone go out as "s:<user>-web", whose tracks
// carry the description {"user_id", "login", "stream_id"}; both show the
// user's plain name as their display. It speaks string-id rooms only. Every
// other stream is subscribed to, one handle each, and shown in the grid with
// its user's name. With several servers (the Server field lists them,
// separated by spaces or commas) the room is on the one the engine would pick
// (servers.js), and the page moves with the room when that server is lost.
// "Share screen" publishes the browser's display capture as a second stream
// of the user, "s:<user>-share" (stream id "<user>-share"): a stream id ending
// in "-share" is content, not a camera, to every client of the room.
"use strict";

const VIDEOROOM = "janus.plugin.videoroom";
const SHARE_SUFFIX = "-share";
// A share is mostly text: keep every pixel (contentHint "detail" makes the
// encoder drop frames rather than resolution), at a few frames a second.
const SHARE_FRAME_RATE = 15;
const SHARE_MAX_BITRATE = 2500000;
const $ = (id) => document.getElementById(id);
const state = {
  janus: null, server: null, servers: [], room: null, user: null, name: null, token: undefined, login: null,
  generation: 0, presence: null, onPresence: null, publisher: null, leaving: true, subscribers: new Map(),
  share: null,
};

function say(text, error = false) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

function prefill() {
  const params = new URLSearchParams(location.search);
  const host = location.hostname || "127.0.0.1";
  $("server").value = params.get("server") || `ws://${host}:8188/`;
  for (const key of ["room", "user", "name", "token"]) $(key).value = params.get(key) || "";
}

function descriptions(offer, description) {
  return offer.sdp.split("\r\n").filter((l) => l.startsWith("a=mid:")).map((l) => ({ mid: l.slice(6), description }));
}

function describedLogin(participant) {
  for (const track of participant.streams || []) {
    try {
      const info = JSON.parse(track.description || "");
      if (info && typeof info.login === "string") return info.login;
    } catch (e) { /* not ours */ }
  }
  return null;
}

function explain(error) {
  const text = String(error && error.message ? error.message : error);
  if (/Unauthorized|token|403/i.test(text)) return "The server refused the token.";
  if (/connect|WebSocket|lost|timeout|Is the server down/i.test(text)) {
    return `Cannot reach the server at ${$("server").value}.`;
  }
  return `Cannot join: ${text}`;
}

function fail(error) {
  say(explain(error), true);
  hangup(false);
}

function openSession(server) {
  return new Promise((resolve, reject) => {
    let opened = false;
    const session = new Janus({
      server, token: state.token,
      success: () => { opened = true; resolve(session); },
      error: (error) => { if (opened) lost(session, error); else reject(error); },
    });
  });
}

function close(session) {
  session.destroy({ cleanupHandles: true, notifyDestroyed: false });
}

function attach(session, callbacks) {
  return new Promise((resolve, reject) => {
    session.attach(Object.assign({ plugin: VIDEOROOM, success: resolve, error: reject }, callbacks));
  });
}

function send(handle, message, jsep) {
  return new Promise((resolve, reject) => {
    handle.send({ message, jsep, success: resolve, error: reject });
  });
}

function tile(feed, name) {
  let element = document.querySelector(`[data-feed="${CSS.escape(feed)}"]`);
  if (!element) {
    element = document.createElement("div");
    element.className = "tile";
    element.dataset.feed = feed;
    element.innerHTML = "<video autoplay playsinline></video><audio autoplay></audio><span></span>";
    $("grid").appendChild(element);
  }
  element.querySelector("span").textContent = name;
  return element;
}

async function subscribe(participant) {
  const feed = String(participant.id);
  if (feed.startsWith("u:") || state.subscribers.has(feed) || describedLogin(participant) === state.login) return;
  const view = tile(feed, participant.display || feed);
  let handle = null;
  handle = await attach(state.janus, {
    onmessage: async (message, jsep) => {
      if (jsep) {
        handle.createAnswer({
          jsep,
          tracks: [{ type: "data" }],
          success: (answer) => send(handle, { request: "start" }, answer).catch(fail),
          error: fail,
        });
      }
    },
    onremotetrack: (track, mid, on) => {
      if (!on) return;
      const element = view.querySelector(track.kind === "video" ? "video" : "audio");
      element.srcObject = new MediaStream([track]);
      element.play().catch(() => {});
    },
  });
  state.subscribers.set(feed, handle);
  await send(handle, { request: "join", ptype: "subscriber", room: state.room, streams: [{ feed: participant.id }] });
}

function unsubscribe(feed) {
  const handle = state.subscribers.get(feed);
  if (handle) handle.detach();
  state.subscribers.delete(feed);
  const element = document.querySelector(`[data-feed="${CSS.escape(feed)}"]`);
  if (element) element.remove();
}

function onRoomEvent(message) {
  for (const participant of message.publishers || []) subscribe(participant).catch(fail);
  for (const key of ["unpublished", "leaving"]) {
    if (message[key] !== undefined && message[key] !== "ok") unsubscribe(String(message[key]));
  }
}

async function publish() {
  let publisher = null;
  publisher = await attach(state.janus, {
    onmessage: (message, jsep) => { if (jsep) publisher.handleRemoteJsep({ jsep }); },
  });
  state.publisher = publisher;
  const offer = await new Promise((resolve, reject) => {
    publisher.createOffer({
      tracks: [{ type: "audio", capture: true, recv: false }, { type: "video", capture: true, recv: false }],
      success: resolve,
      error: reject,
    });
  });
  const user = state.user;
  const description = JSON.stringify({ user_id: user, login: state.login, stream_id: `${user}-web` });
  await send(publisher, {
    request: "joinandconfigure", ptype: "publisher", room: state.room, id: `s:${user}-web`, display: state.name,
    descriptions: descriptions(offer, description),
  }, offer);
}

// Publishes what the visitor picks (a tab, a window, a screen) as "<user>-share".
async function share() {
  $("share").disabled = true;
  let capture;
  try {
    capture = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: SHARE_FRAME_RATE } }, audio: false });
  } catch (error) {
    $("share").disabled = state.janus === null;
    say(`Not sharing: ${error.message || error}`, true);
    return;
  }
  const track = capture.getVideoTracks()[0];
  track.contentHint = "detail";
  let handle = null;
  handle = await attach(state.janus, {
    onmessage: (message, jsep) => { if (jsep) handle.handleRemoteJsep({ jsep }); },
  });
  state.share = { handle, track };
  track.addEventListener("ended", stopShare);  // the browser's own "Stop sharing"
  const offer = await new Promise((resolve, reject) => {
    handle.createOffer({ tracks: [{ type: "video", capture: track, recv: false }], success: resolve, error: reject });
  });
  for (const sender of handle.webrtcStuff.pc.getSenders()) {
    const parameters = sender.getParameters();
    parameters.degradationPreference = "maintain-resolution";
    for (const encoding of parameters.encodings || []) encoding.maxBitrate = SHARE_MAX_BITRATE;
    await sender.setParameters(parameters);
  }
  const streamId = `${state.user}${SHARE_SUFFIX}`;
  const description = JSON.stringify({ user_id: state.user, login: state.login, stream_id: streamId });
  await send(handle, {
    request: "joinandconfigure", ptype: "publisher", room: state.room, id: `s:${streamId}`, display: state.name,
    descriptions: descriptions(offer, description),
  }, offer);
  $("share").textContent = "Stop sharing";
  $("share").disabled = false;
}

// Ends the share: the room sees its stream go and returns to its layout.
function stopShare() {
  const current = state.share;
  state.share = null;
  if (current) {
    current.track.removeEventListener("ended", stopShare);
    current.track.stop();
    // Unpublish first: the room hears at once that the share is gone, before
    // the handle and its connection are torn down.
    const detach = () => current.handle.detach();
    send(current.handle, { request: "unpublish" }).then(detach, detach);
  }
  $("share").textContent = "Share screen";
  $("share").disabled = state.janus === null;
}

// Connects to `server` and asks whether the room is there and has participants.
async function probe(server) {
  const session = await openSession(server);
  try {
    const handle = await attach(session, {
      onmessage: (message, jsep) => { if (state.presence === handle && state.onPresence) state.onPresence(message, jsep); },
    });
    const answer = await send(handle, { request: "exists", room: state.room });
    if (answer.error) throw new Error(answer.error);
    let occupied = false;
    if (answer.exists && state.servers.length > 1) {
      const list = await send(handle, { request: "listparticipants", room: state.room });
      occupied = (list.participants || []).length > 0;
    }
    return { server, session, handle, exists: answer.exists === true, occupied };
  } catch (error) {
    close(session);
    throw error;
  }
}

// The engine's rule: every server is asked at once, and the room goes, in the
// room's order, where it has participants, else where it exists, else to the
// first server that answers.
async function chooseServer() {
  const probes = serverOrder(state.room, state.servers).map(probe);
  const answered = [];
  let error = null;
  for (const pending of probes) {
    try {
      answered.push(await pending);
    } catch (e) {
      error = error || e;
      continue;
    }
    if (answered[answered.length - 1].occupied) break;
  }
  const chosen = answered.find((p) => p.occupied) || answered.find((p) => p.exists) || answered[0];
  for (const pending of probes) pending.then((p) => { if (p !== chosen) close(p.session); }, () => {});
  if (!chosen) throw error;
  return chosen;
}

// Finds the room's server, joins it, publishes and plays every stream there.
async function enter() {
  const chosen = await chooseServer();
  if (state.leaving) { close(chosen.session); return; }
  Object.assign(state, { janus: chosen.session, server: chosen.server, presence: chosen.handle });
  const presence = chosen.handle, room = state.room;
  if (!chosen.exists) {
    // The answer is an error 427 if someone made it since we asked: join it all the same.
    await send(presence, {
      request: "create", room, permanent: false, publishers: 64, videocodec: "h264,vp8",
      audiocodec: "opus", h264_profile: "42e01f", notify_joining: true,
    });
  }
  state.generation += 1;
  const joined = await new Promise((resolve, reject) => {
    state.onPresence = (message) => {
      if (message.videoroom === "joined") resolve(message);
      else if (message.error) reject(new Error(message.error));
      else if (message.videoroom === "event") onRoomEvent(message);
    };
    presence.send({
      message: { request: "join", ptype: "publisher", room, id: `u:${state.user}:${state.login}.${state.generation}`,
        display: state.name },
      error: reject,
    });
  });
  state.onPresence = (message) => { if (message.videoroom === "event") onRoomEvent(message); };
  await publish();
  for (const participant of joined.publishers || []) await subscribe(participant);
  $("hangup").disabled = false;
  $("share").disabled = false;
  say(`In room ${room} as ${state.name}.`);
}

// The room's server is gone: everyone follows the same rule, so they meet again.
async function lost(session, error) {
  if (session !== state.janus || state.leaving) return;
  close(session);
  for (const feed of [...state.subscribers.keys()]) unsubscribe(feed);
  Object.assign(state, { janus: null, server: null, presence: null, onPresence: null, publisher: null });
  stopShare();  // it went with the session; the visitor shares again once back
  for (let delay = 250; !state.leaving; delay = Math.min(delay * 2, 8000)) {
    say(`Lost the server (${explain(error)}); looking for the room again…`, true);
    try {
      await enter();
      return;
    } catch (e) {
      error = e;
      if (state.janus) { close(state.janus); state.janus = null; }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

function join(event) {
  event.preventDefault();
  Object.assign(state, {
    servers: $("server").value.split(/[\s,]+/).filter(Boolean), room: $("room").value, user: $("user").value,
    name: $("name").value || $("user").value, token: $("token").value || undefined, leaving: false,
    login: Math.floor(Math.random() * 0x8000).toString(16).padStart(4, "0"),
  });
  $("join").disabled = true;
  say(`Connecting to ${state.servers.join(", ")}…`);
  Janus.init({ debug: false, dependencies: Janus.useDefaultDependencies(), callback: () => enter().catch(fail) });
}

function hangup(clear = true) {
  state.leaving = true;
  stopShare();
  for (const feed of [...state.subscribers.keys()]) unsubscribe(feed);
  if (state.janus) state.janus.destroy({ cleanupHandles: true });
  Object.assign(state, { janus: null, server: null, presence: null, onPresence: null, publisher: null });
  $("join").disabled = false;
  $("hangup").disabled = true;
  $("share").disabled = true;
  if (clear) say("Left the room.");
}

prefill();
$("join-form").addEventListener("submit", join);
$("hangup").addEventListener("click", () => hangup(true));
$("share").addEventListener("click", () => (state.share ? stopShare() : share().catch((error) => {
  stopShare();
  say(`Not sharing: ${error.message || error}`, true);
})));
