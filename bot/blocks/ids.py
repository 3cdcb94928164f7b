"""Every callback_id, block_id and action_id Herald uses, in one place (a listener and its
builder must agree, and the manifest test reads the shortcut ids from here)."""

# /social and shortcuts ------------------------------------------------------------------
COMMAND = "/social"
SHORTCUT_NEW_POST = "herald_new_post"              # global shortcut
SHORTCUT_DRAFT_FROM_MESSAGE = "herald_draft_from_message"   # message shortcut
DRAFT_EDIT = "herald_draft_edit"               # Edit button in /social drafts

# Compose modal ----------------------------------------------------------------------------
COMPOSE_VIEW = "herald_compose"
COMPOSE_PROJECT_BLOCK, COMPOSE_PROJECT = "compose_project", "project"
COMPOSE_ACCOUNTS_BLOCK, COMPOSE_ACCOUNTS = "compose_accounts", "accounts"
COMPOSE_BODY_BLOCK, COMPOSE_BODY = "compose_body", "body"
COMPOSE_OVERRIDE_BLOCK_PREFIX, COMPOSE_OVERRIDE = "compose_override:", "override"
COMPOSE_MEDIA_URL_BLOCK, COMPOSE_MEDIA_URL = "compose_media_url", "media_url"
COMPOSE_MEDIA_FILE_BLOCK, COMPOSE_MEDIA_FILE = "compose_media_file", "media_file"
COMPOSE_ALT_TEXT_BLOCK, COMPOSE_ALT_TEXT = "compose_alt_text", "alt_text"
COMPOSE_DATE_BLOCK, COMPOSE_DATE = "compose_date", "date"
COMPOSE_TIME_BLOCK, COMPOSE_TIME = "compose_time", "time"
COMPOSE_TAGS_BLOCK, COMPOSE_TAGS = "compose_tags", "tags"
COMPOSE_INTENT_BLOCK, COMPOSE_INTENT = "compose_intent", "intent"    # save draft / submit
INTENT_DRAFT, INTENT_SUBMIT = "draft", "submit"
COMPOSE_KEEP_MEDIA_BLOCK, COMPOSE_KEEP_MEDIA = "compose_keep_media", "keep_media"   # editing: keep a Slack file
COMPOSE_LENGTHS_BLOCK = "compose_lengths"          # context: length per selected network

# Approval message and reason modal --------------------------------------------------------
APPROVE = "herald_approve"
REQUEST_CHANGES = "herald_request_changes"
REJECT = "herald_reject"
REASON_VIEW = "herald_reason"
REASON_BLOCK, REASON = "reason", "reason"

# App Home ---------------------------------------------------------------------------------
HOME_NEW_POST = "herald_home_new_post"
HOME_EDIT_DRAFT = "herald_home_edit_draft"
HOME_CANCEL_POST = "herald_home_cancel_post"
HOME_VIEW = "herald_home"                           # callback_id of the Home tab view
HOME_RETRY_TARGET = "herald_home_retry_target"     # failures: Retry
HOME_CANCEL_TARGET = "herald_home_cancel_target"   # failures: Cancel (give up on that network)
HOME_RECONNECT_ACCOUNT = "herald_home_reconnect"   # link button to the web (acked, nothing else)

# Publish results (engine) -----------------------------------------------------------------
RETRY_TARGET = "herald_retry_target"
CANCEL_TARGET = "herald_cancel_target"
MARK_POSTED = "herald_mark_posted"                 # needs_review: "It was posted"
PUBLISH_AGAIN = "herald_publish_again"             # needs_review: "Publish again"
RECONNECT_ACCOUNT = "herald_reconnect_account"     # link button to the web
