"""The Slack surface (slack-bolt). Listeners parse, call core, render; no SQL, no HTTP to
networks."""
