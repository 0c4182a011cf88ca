// Which of several Janus servers holds a room: rendezvous hashing, the same
// rule as appliance/engine/servers.py (tested against it on 1,000 room ids).
// The weight is FNV-1a (32 bits) over the UTF-8 bytes of url + "\n" + room,
// mixed by MurmurHash3's finaliser; ties go to the smaller URL.
"use strict";

function serverWeight(url, room) {
  let value = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`${url}\n${room}`)) {
    value = Math.imul(value ^ byte, 0x01000193) >>> 0;
  }
  value = (value ^ (value >>> 16)) >>> 0;
  value = Math.imul(value, 0x85ebca6b) >>> 0;
  value = (value ^ (value >>> 13)) >>> 0;
  value = Math.imul(value, 0xc2b2ae35) >>> 0;
  return (value ^ (value >>> 16)) >>> 0;
}

// The servers in the order the room uses them, highest weight first.
function serverOrder(room, urls) {
  return urls
    .map((url) => [serverWeight(url, room), url])
    .sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([, url]) => url);
}
