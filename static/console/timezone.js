/* Tells the server the browser's time zone, so console pages show times in it
 * (multimail/operator_time.py accepts only a known IANA name; UTC until this has run once). */
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (error) { return; }
  // IANA names need no escaping in a cookie; anything else is not a zone the server knows.
  if (!zone || !/^[A-Za-z0-9_+\/-]+$/.test(zone)) { return; }
  var cookie = "mm_tz=" + zone;
  if (document.cookie.split("; ").indexOf(cookie) === -1) {
    document.cookie = cookie + "; path=/; max-age=31536000; SameSite=Lax";
  }
})();
