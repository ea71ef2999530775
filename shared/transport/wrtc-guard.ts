/**
 * A guard around a Node WebRTC implementation (`@roamhq/wrtc`) for simple-peer: every
 * RTCPeerConnection it builds answers `localDescription` and `remoteDescription` from the
 * descriptions last set successfully, in JavaScript, instead of asking the native side.
 *
 * Why: @roamhq/wrtc 0.10 serialises the native description on the JavaScript thread
 * (`GetLocalDescription` → `SdpSerialize`) while libwebrtc's own threads add the candidates
 * they gather to it; the process then dies of a segmentation fault, at random, about once in a
 * few hundred connections (forced GC between connections makes it come within 150; the same
 * crash as node-webrtc issue #696). simple-peer reads both descriptions during the handshake:
 * the local one to send the offer or answer, the remote one on every trickled candidate. With
 * trickle (always, here) the description that was set is exactly what is to be sent, since the
 * candidates go in their own signals; so nothing is lost by not asking the native side.
 *
 * Pure logic: takes the implementation, imports none. The browser's own WebRTC needs no guard.
 */

/** The part of a WebRTC implementation simple-peer uses (`SimplePeer.Options['wrtc']`). */
export interface WrtcLike {
  RTCPeerConnection: unknown;
  RTCSessionDescription: unknown;
  RTCIceCandidate: unknown;
}

interface Described {
  type: RTCSdpType;
  sdp: string;
}

const guarded = new WeakMap<object, object>();

/** `impl` with its RTCPeerConnection guarded (one guarded copy per implementation). */
export function guardDescriptions<T extends WrtcLike>(impl: T): T {
  const known = guarded.get(impl);
  if (known) return known as T;
  const Native = impl.RTCPeerConnection as new (config?: RTCConfiguration) => RTCPeerConnection;
  function GuardedPeerConnection(config?: RTCConfiguration): RTCPeerConnection {
    return guardPeerConnection(new Native(config));
  }
  const out = { ...impl, RTCPeerConnection: GuardedPeerConnection } as T;
  guarded.set(impl, out);
  return out;
}

/** A view of `pc` whose two description getters answer from JavaScript (see the file comment). */
function guardPeerConnection(pc: RTCPeerConnection): RTCPeerConnection {
  let local: Described | null = null;
  let remote: Described | null = null;
  const copy = (d: RTCSessionDescriptionInit | undefined): Described | null =>
    d?.type && typeof d.sdp === 'string' ? { type: d.type, sdp: d.sdp } : null;
  const setLocal = (d?: RTCSessionDescriptionInit) =>
    pc.setLocalDescription(d).then(() => {
      local = copy(d);
    });
  const setRemote = (d: RTCSessionDescriptionInit) =>
    pc.setRemoteDescription(d).then(() => {
      remote = copy(d);
    });
  return new Proxy(pc, {
    get(target, p) {
      if (p === 'localDescription') return local;
      if (p === 'remoteDescription') return remote;
      if (p === 'setLocalDescription') return setLocal;
      if (p === 'setRemoteDescription') return setRemote;
      const v = Reflect.get(target, p, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
    set(target, p, v) {
      return Reflect.set(target, p, v, target);
    },
  });
}
