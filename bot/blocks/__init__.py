"""Pure Block Kit builders: data in, dicts out. No database, no Slack calls."""
