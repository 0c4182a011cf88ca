// The benchmark's Chromium peer: what a browser kiosk would run. It subscribes
// through janus.js to every stream in ?room= on ?server= and shows each in a
// <video>. With ?stamp=1 it reads the test pattern's stamp (see
// appliance/testing/testpattern.py) out of each frame at
// requestVideoFrameCallback and keeps the frame's age at its expected display
// time: window.peer.ages (ms). window.peer.error says what went wrong;
// window.peerState() gives both with the frames shown.
"use strict";

const params = new URLSearchParams(location.search);
const FRAME_BITS = 32, TIME_BITS = 48, BITS = FRAME_BITS + TIME_BITS, BLACK = 16, WHITE = 235;
window.peer = { ages: [], videos: 0, error: null };
// The state with the frames the <video> elements have shown so far, counted by
// Chromium itself (a callback per frame would add to the CPU being measured).
window.peerState = () => ({
  ...window.peer,
  frames: [...document.querySelectorAll("video")].reduce((n, v) => n + v.getVideoPlaybackQuality().totalVideoFrames, 0),
});

function send(handle, message, jsep) {
  return new Promise((resolve, reject) => handle.send({ message, jsep, success: resolve, error: reject }));
}

function attach(session, callbacks) {
  return new Promise((resolve, reject) => {
    session.attach(Object.assign({ plugin: "janus.plugin.videoroom", success: resolve, error: reject }, callbacks));
  });
}

// The stamp's two rows as read_stamp reads them: the middle half of each block,
// the second row the inverse of the first; null when they disagree.
function readStamp(pixels, width, strip) {
  const row = (y0, left, right) => {
    let sum = 0, n = 0;
    for (let y = y0 + (strip >> 2); y < y0 + strip - (strip >> 2); y++) {
      for (let x = left; x < right; x++) { sum += pixels[(y * width + x) * 4 + 1]; n++; }
    }
    return sum / n > (WHITE + BLACK) / 2;
  };
  let frame = 0, time = 0;
  for (let i = 0; i < BITS; i++) {
    const left = width * i / BITS, right = width * (i + 1) / BITS, quarter = (right - left) / 4;
    const from = Math.floor(left + quarter), to = Math.max(from + 1, Math.floor(right - quarter));
    const bit = row(0, from, to);
    if (bit === row(strip, from, to)) return null;
    if (i < FRAME_BITS) frame = frame * 2 + bit; else time = time * 2 + bit;
  }
  return { frame, time };
}

function measure(video) {
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let last = -1;
  const onFrame = (now, metadata) => {
    const width = video.videoWidth, strip = Math.max(4, Math.round(video.videoHeight / 45));
    canvas.width = width;
    canvas.height = 2 * strip;
    context.drawImage(video, 0, 0, width, 2 * strip, 0, 0, width, 2 * strip);
    const stamp = readStamp(context.getImageData(0, 0, width, 2 * strip).data, width, strip);
    if (stamp && stamp.frame !== last) {
      last = stamp.frame;
      window.peer.ages.push(performance.timeOrigin + metadata.expectedDisplayTime - stamp.time);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

async function subscribe(session, room, participant) {
  let handle = null;
  handle = await attach(session, {
    onmessage: (message, jsep) => {
      if (!jsep) return;
      handle.createAnswer({
        jsep, tracks: [{ type: "data" }],
        success: (answer) => send(handle, { request: "start" }, answer),
        error: (error) => { window.peer.error = String(error); },
      });
    },
    onremotetrack: (track, mid, on) => {
      if (!on || track.kind !== "video") return;
      const video = document.createElement("video");
      video.muted = true;
      video.autoplay = true;
      video.srcObject = new MediaStream([track]);
      document.body.appendChild(video);
      video.play().catch(() => {});
      window.peer.videos += 1;
      if (params.get("stamp") === "1") measure(video);
    },
  });
  await send(handle, { request: "join", ptype: "subscriber", room, streams: [{ feed: participant.id }] });
}

async function start() {
  const session = await new Promise((resolve, reject) => {
    const janus = new Janus({ server: params.get("server"), success: () => resolve(janus), error: reject });
  });
  const room = params.get("room");
  const lister = await attach(session, {});
  const list = await send(lister, { request: "listparticipants", room });
  for (const participant of list.participants || []) {
    if (participant.publisher && !String(participant.id).startsWith("u:")) await subscribe(session, room, participant);
  }
}

Janus.init({
  debug: false, dependencies: Janus.useDefaultDependencies(),
  callback: () => start().catch((error) => { window.peer.error = String(error && error.message || error); }),
});
