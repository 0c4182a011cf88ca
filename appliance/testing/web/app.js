// A browser participant for the appliance's rooms, on janus.js.
// It follows the engine's naming in the VideoRoom (see docs/architecture.md):
// the logged-in user is a participant "u:<user>:<login>.1" that never
// publishes; the camera and microphone go out as "s:<user>-web", whose tracks
// carry the description {"user_id", "login", "stream_id"}; both show the
// user's plain name as their display. It speaks string-id rooms only. Every
// other stream is subscribed to, one handle each, and shown in the grid with
// its user's name.
"use strict";

const VIDEOROOM = "janus.plugin.videoroom";
const $ = (id) => document.getElementById(id);
const state = { janus: null, room: null, user: null, login: null, subscribers: new Map() };

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

function attach(callbacks) {
  return new Promise((resolve, reject) => {
    state.janus.attach(Object.assign({ plugin: VIDEOROOM, success: resolve, error: reject }, callbacks));
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
  const stream = new MediaStream();
  let handle = null;
  handle = await attach({
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
      stream.addTrack(track);
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

async function publish(user, name) {
  let publisher = null;
  publisher = await attach({
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
  const description = JSON.stringify({ user_id: user, login: state.login, stream_id: `${user}-web` });
  await send(publisher, {
    request: "joinandconfigure", ptype: "publisher", room: state.room, id: `s:${user}-web`, display: name,
    descriptions: offer.sdp.split("\r\n").filter((l) => l.startsWith("a=mid:")).map((l) => ({ mid: l.slice(6), description })),
  }, offer);
}

async function join(event) {
  event.preventDefault();
  const server = $("server").value, room = $("room").value, user = $("user").value;
  const name = $("name").value || user, token = $("token").value || undefined;
  state.room = room;
  state.user = user;
  state.login = Math.floor(Math.random() * 0x8000).toString(16).padStart(4, "0");
  $("join").disabled = true;
  say(`Connecting to ${server}…`);
  Janus.init({ debug: false, dependencies: Janus.useDefaultDependencies(), callback: () => {
    state.janus = new Janus({
      server, token,
      success: async () => {
        try {
          const presence = await attach({
            onmessage: (message) => {
              if (message.videoroom === "event") onRoomEvent(message);
            },
          });
          state.presence = presence;
          await send(presence, {
            request: "create", room, permanent: false, publishers: 64, videocodec: "h264,vp8",
            audiocodec: "opus", h264_profile: "42e01f", notify_joining: true,
          }).catch(() => {});  // the room may exist already (error 427)
          const joined = await new Promise((resolve, reject) => {
            presence.send({
              message: { request: "join", ptype: "publisher", room, id: `u:${user}:${state.login}.1`, display: name },
              error: reject,
            });
            const original = presence.onmessage;
            presence.onmessage = (message, jsep) => {
              if (message.videoroom === "joined") { presence.onmessage = original; resolve(message); }
              else if (message.error) reject(new Error(message.error));
              else original(message, jsep);
            };
          });
          await publish(user, name);
          for (const participant of joined.publishers || []) await subscribe(participant);
          $("hangup").disabled = false;
          say(`In room ${room} as ${name}.`);
        } catch (error) {
          fail(error);
        }
      },
      error: fail,
    });
  } });
}

function hangup(clear = true) {
  for (const feed of [...state.subscribers.keys()]) unsubscribe(feed);
  if (state.janus) state.janus.destroy({ cleanupHandles: true });
  state.janus = null;
  $("join").disabled = false;
  $("hangup").disabled = true;
  if (clear) say("Left the room.");
}

prefill();
$("join-form").addEventListener("submit", join);
$("hangup").addEventListener("click", () => hangup(true));
