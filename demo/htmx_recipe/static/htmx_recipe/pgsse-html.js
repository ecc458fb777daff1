// htmx extension "pgsse-html": pgsse sends every event's data as JSON, so an HTML fragment
// rendered by the server arrives as a JSON string. htmx's sse extension passes each event's
// data through the transformResponse hook of the element's extensions before swapping it:
// decode the string there. Ordinary htmx requests (they have an xhr) are left alone.
htmx.defineExtension("pgsse-html", {
  transformResponse: function (text, xhr) {
    if (xhr) {
      return text;
    }
    var value = JSON.parse(text);
    return typeof value === "string" ? value : text;
  },
});
