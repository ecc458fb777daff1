// pgsse.js: a django-pgsse stream for a page, on the browser's EventSource.
// Vanilla JS, no dependency, no build step. Include it with {% pgsse_script %}; the
// guide is docs/javascript.md.
//
//   const stream = pgsse.connect("/events/room:lobby/", {
//     position: "{% pgsse_position 'room:lobby' %}",     // the page-load position
//     events: { message_created(data, event) { ... } },  // data is the parsed JSON
//     onstate(state, info) { ... },  // connecting, live, reconnecting, denied, closed
//     onreset(info) { ... },         // {reason, message, position}: reload what you show
//   });
//   stream.close();
//
// What EventSource does by itself, and what this adds:
// - A stream that breaks after it was accepted (network, server restart, or the server
//   ending it with `retry:`) is reconnected by the browser, with Last-Event-ID. Kept;
//   if that reconnect fails too (server unreachable), ours take over, with backoff.
// - An answer other than 200 text/event-stream makes EventSource give up for good
//   (readyState CLOSED) without telling why. Here, a fetch "probe" learns the status:
//   401/403 stop (denied), other 4xx and 204 stop (closed), anything else is retried
//   with backoff, after Retry-After if the answer had one (429, 503). The new
//   EventSource resumes from the last position seen, as ?last_event_id=.
// - The network: when the browser says it is offline, the stream stops waiting on a
//   connection that cannot carry anything and waits for the network (info.offline);
//   when it says it is back online, a reconnect waiting after a network failure happens
//   at once instead of at the end of its backoff. A wait the server asked for (a
//   refusal's Retry-After) is still waited out.
(function () {
  "use strict";

  const DEFAULTS = { minDelay: 1000, maxDelay: 30000 };
  // setTimeout fires at once for delays past 2^31-1 ms: never wait longer than that.
  const LONGEST_WAIT = 2147483647;

  // The wait, in ms, before reconnect attempt `attempt` (0 for the first): it doubles
  // from minDelay up to maxDelay, then stays there. "Equal jitter": half of it is fixed,
  // half random, so that clients refused together come back spread out, yet none comes
  // back sooner than half the step. A Retry-After (ms) is waited on top, never cut.
  function retryDelay(attempt, retryAfter, minDelay, maxDelay, random) {
    retryAfter = retryAfter || 0;
    minDelay = minDelay === undefined ? DEFAULTS.minDelay : minDelay;
    maxDelay = maxDelay === undefined ? DEFAULTS.maxDelay : maxDelay;
    random = random || Math.random;
    const step = Math.min(maxDelay, minDelay * Math.pow(2, Math.min(attempt, 52)));
    return Math.min(LONGEST_WAIT, retryAfter + step / 2 + (random() * step) / 2);
  }

  // Retry-After is either seconds or an HTTP date; anything else counts as absent.
  function parseRetryAfter(value) {
    if (!value) return 0;
    if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
    const date = Date.parse(value);
    return isNaN(date) ? 0 : Math.max(0, date - Date.now());
  }

  function isEventStream(response) {
    const type = response.headers.get("Content-Type") || "";
    return type.split(";")[0].trim().toLowerCase() === "text/event-stream";
  }

  function connect(url, options) {
    options = options || {};
    const events = options.events || {};
    let position = options.position || "";
    let source = null; // the current EventSource
    let timer = null; // a reconnect waiting to happen
    let probe = null; // the AbortController of a probe in flight
    let attempt = 0; // reconnects of ours since the stream was last live
    let healthy = false; // the current EventSource opened since its last error
    let forNetwork = false; // the waiting reconnect waits for the network, not the server

    const stream = {
      state: "connecting",
      get position() {
        return position;
      },
      close() {
        if (finished()) return;
        end("closed", {});
      },
    };

    function finished() {
      return stream.state === "closed" || stream.state === "denied";
    }

    function setState(state, info) {
      stream.state = state;
      if (options.onstate) options.onstate(state, info);
    }

    // The stream's URL, resuming from the last position seen. The server reads the
    // Last-Event-ID header first: the browser's own reconnects send theirs, which may
    // be further on (the id-only frame after a replay fires no event we could see).
    function streamUrl() {
      const target = new URL(url, window.location.href);
      if (position) target.searchParams.set("last_event_id", position);
      return target.href;
    }

    function open() {
      timer = null;
      healthy = false;
      source = new EventSource(streamUrl(), { withCredentials: !!options.withCredentials });
      source.addEventListener("open", () => {
        // Accepted: replayed events (if any) come first, then live ones, in order.
        healthy = true;
        attempt = 0;
        setState("live", {});
      });
      source.addEventListener("error", failed);
      source.addEventListener("reset", (event) => {
        // The position could not be resumed; the stream goes on live from the new one.
        position = event.lastEventId;
        const data = JSON.parse(event.data);
        const info = { reason: data.reason, message: data.message, position: position };
        if (options.onreset) options.onreset(info);
      });
      Object.keys(events).forEach((type) => {
        source.addEventListener(type, (event) => {
          // Events come in stream order whatever their type: the last id seen is the
          // position. Only the types listened to are seen; resuming from the last one
          // may replay others, which nobody listens to.
          if (event.lastEventId) position = event.lastEventId;
          events[type](JSON.parse(event.data), event);
        });
      });
    }

    function failed(event) {
      if (event.target !== source) return; // a source already replaced or closed
      if (source.readyState === EventSource.CONNECTING && healthy) {
        // A live stream broke: the browser reconnects by itself with Last-Event-ID.
        healthy = false;
        setState("reconnecting", {});
        return;
      }
      // The browser gave up (CLOSED: refused), or its own reconnect failed as well
      // (the server is unreachable): ours take over, with backoff.
      const refused = source.readyState === EventSource.CLOSED;
      source.close();
      source = null;
      if (refused) probeThenRetry();
      else retryLater({});
    }

    // EventSource tells neither the status nor the headers of a refusal, so the same
    // request is made once with fetch, which does. If the server accepts it (200, the
    // refusal has passed), the probe is aborted at once: it never holds a stream open.
    async function probeThenRetry() {
      const controller = (probe = new AbortController());
      const info = {};
      try {
        const response = await fetch(streamUrl(), {
          headers: { Accept: "text/event-stream" },
          credentials: options.withCredentials ? "include" : "same-origin",
          cache: "no-store",
          signal: controller.signal,
        });
        const status = (info.status = response.status);
        info.retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
        // Retrying cannot help: a refusal (401/403), a request the server will never
        // accept (other 4xx), "stop" (204), or a redirect to a page that is not a
        // stream (a login page, usually).
        const denied = status === 401 || status === 403;
        const final =
          status === 204 || (status >= 400 && status < 500 && status !== 408 && status !== 429);
        const redirected = response.redirected && status === 200 && !isEventStream(response);
        if (final || redirected) {
          info.body = await response.text();
          if (redirected) info.url = response.url;
          if (finished()) return;
          end(denied || redirected ? "denied" : "closed", info);
          return;
        }
      } catch (error) {
        // The network, CORS (a cross-origin stream must allow it), or close() aborting us.
      } finally {
        controller.abort();
        if (probe === controller) probe = null;
      }
      retryLater(info);
    }

    function retryLater(info) {
      if (finished()) return; // close() came first
      info.delay = retryDelay(attempt++, info.retryAfter, options.minDelay, options.maxDelay);
      info.attempt = attempt;
      if (navigator.onLine === false) info.offline = true;
      forNetwork = !info.status; // no answer: the network, or a server that is down
      timer = setTimeout(open, info.delay);
      setState("reconnecting", info);
    }

    // The browser's word on the network. Offline: a live or opening stream is stopped
    // (its connection may stay up for minutes without carrying anything) and waits.
    // Online: a reconnect waiting after a network failure happens now. A pending wait the
    // server asked for is left alone either way.
    function wentOffline() {
      if (finished() || timer !== null || probe) return;
      stop();
      retryLater({});
    }

    function cameOnline() {
      if (finished() || timer === null || !forNetwork) return;
      clearTimeout(timer);
      open();
    }

    window.addEventListener("offline", wentOffline);
    window.addEventListener("online", cameOnline);

    // A final state: nothing acts later, not even the network's events.
    function end(state, info) {
      stop();
      window.removeEventListener("offline", wentOffline);
      window.removeEventListener("online", cameOnline);
      setState(state, info);
    }

    // Everything that could act later: the source, a probe, a reconnect timer.
    function stop() {
      clearTimeout(timer);
      timer = null;
      if (probe) probe.abort();
      probe = null;
      if (source) source.close();
      source = null;
    }

    // Started in a microtask, so that callbacks may already use what connect() returns.
    queueMicrotask(() => {
      if (finished()) return;
      setState("connecting", {});
      open();
    });
    return stream;
  }

  window.pgsse = { connect: connect, retryDelay: retryDelay };
})();
