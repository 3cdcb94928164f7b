"""The compose modal: pure builders (plain values in, view dict out) and the reverse, reading
a submitted view's state back into plain values.

One modal, two intents chosen with radio buttons ("Submit for approval" / "Save as draft"):
a Slack modal has a single submit button, and keeping the choice inside the form means
both paths share validation and every inline error lands next to its input.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

from bot.blocks import ids
from bot.blocks.common import context, escape, section

TITLE_NEW = "New social post"
TITLE_EDIT = "Edit post"
BODY_MAX = 3000                 # plain_text_input max_length
ALT_TEXT_MAX = 1000             # the smallest network limit (X)
MAX_OVERRIDES = 20              # per-account text inputs shown (the modal holds ≤ 100 blocks)
MAX_STATIC_OPTIONS = 100        # static selects hold ≤ 100 options; beyond: external select
MAX_FILES = 4
FILE_TYPES = ["jpg", "jpeg", "png", "gif", "webp", "mp4", "mov"]
METADATA_MAX = 3000
OPTION_TEXT_MAX = 75


# --------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    group: str = ""             # accounts: the project they belong to ("" = unassigned)


@dataclass
class Metadata:
    """What a submission needs that the form doesn't hold. Never trusted for authorization:
    core re-checks the workspace and the person's rights on every save."""

    post_id: str | None = None          # editing this post
    channel_id: str | None = None       # where /social was used (confirmation, Default project)
    tz: str | None = None               # the person's Slack time zone when the modal opened
    external: bool = False              # accounts come from an external select

    def dumps(self) -> str:
        data = {"p": self.post_id, "c": self.channel_id, "z": self.tz, "x": 1 if self.external else 0}
        raw = json.dumps({k: v for k, v in data.items() if v}, separators=(",", ":"))
        if len(raw) > METADATA_MAX:
            raise ValueError("private_metadata over 3000 characters")
        return raw

    @classmethod
    def loads(cls, raw: str | None) -> "Metadata":
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}

        def text(key):
            value = data.get(key)
            return str(value)[:64] if isinstance(value, (str, int)) and value != "" else None
        return cls(post_id=text("p"), channel_id=text("c"), tz=text("z"), external=bool(data.get("x")))


@dataclass
class Form:
    """The modal's inputs as plain values (to prefill it, or as submitted)."""

    project_id: str | None = None
    accounts: list[Option] = field(default_factory=list)       # chosen accounts (id, label)
    body: str = ""
    overrides: dict[str, str] = field(default_factory=dict)    # account id -> own text
    media_url: str = ""
    files: list[dict] = field(default_factory=list)            # file_input: [{id, name, mimetype}]
    keep_media: bool = True
    alt_text: str = ""
    date: str | None = None                                    # YYYY-MM-DD, the person's wall clock
    time: str | None = None                                    # HH:MM
    tags: str = ""
    intent: str = ids.INTENT_SUBMIT

    @property
    def account_ids(self) -> list[str]:
        return [a.value for a in self.accounts]

    def tag_list(self) -> list[str]:
        return [t.strip() for t in re.split(r"[,\n]", self.tags or "") if t.strip()]


@dataclass(frozen=True)
class Length:
    network: str
    count: int
    limit: int


@dataclass
class ComposeModal:
    projects: list[Option]
    accounts: list[Option]              # the choices (static select); unused when external
    form: Form
    metadata: Metadata
    zone: str                           # the zone date and time are read in
    personal_zone: bool = True          # it is the person's own (else the project's or UTC)
    editing: bool = False
    external_accounts: bool = False
    kept_media: list[str] = field(default_factory=list)    # names of Slack files on the post
    lengths: list[Length] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# Views


def _text(value: str, limit: int = 150) -> dict:
    value = value or " "
    if len(value) > limit:
        value = value[:limit - 1] + "…"
    return {"type": "plain_text", "text": value}


def _option(option: Option) -> dict:
    return {"text": _text(option.label, OPTION_TEXT_MAX), "value": option.value[:150]}


def _input(block_id: str, label: str, element: dict, *, optional: bool = False,
           hint: str | None = None, dispatch: bool = False) -> dict:
    block = {"type": "input", "block_id": block_id, "label": _text(label, 2000),
             "optional": optional, "element": element}
    if hint:
        block["hint"] = _text(hint, 2000)
    if dispatch:
        block["dispatch_action"] = True
    return block


def _modal(title: str, blocks: list[dict], *, submit: str | None = None, close: str = "Cancel",
           callback_id: str | None = None, metadata: str | None = None) -> dict:
    view = {"type": "modal", "title": _text(title, 24), "close": _text(close, 24), "blocks": blocks}
    if submit:
        view["submit"] = _text(submit, 24)
    if callback_id:
        view["callback_id"] = callback_id
    if metadata:
        view["private_metadata"] = metadata
    return view


def loading_view(title: str = TITLE_NEW) -> dict:
    """Opened at once with the trigger_id (it expires in ~3 s); replaced when data is ready."""
    return _modal(title, [section(":hourglass_flowing_sand: Loading…")])


def notice_view(text: str, title: str = TITLE_NEW) -> dict:
    """A modal with one message and a Close button (errors, nothing to compose with)."""
    return _modal(title, [section(escape(text))], close="Close")


def no_accounts_view(accounts_url: str, title: str = TITLE_NEW) -> dict:
    return _modal(title, [section(
        "No social accounts are connected yet, so there is nothing to post to. "
        f"Connect one at <{accounts_url}|{escape(accounts_url)}>, then run `/social` again.")],
        close="Close")


def compose_view(modal: ComposeModal) -> dict:
    form = modal.form
    blocks: list[dict] = [_project_block(modal), _accounts_block(modal)]
    if modal.lengths:
        blocks.append({"type": "context", "block_id": ids.COMPOSE_LENGTHS_BLOCK,
                       "elements": [{"type": "mrkdwn", "text": lengths_line(modal.lengths)}]})
    blocks.append(_input(ids.COMPOSE_BODY_BLOCK, "Text", _text_input(
        ids.COMPOSE_BODY, form.body, multiline=True, max_length=BODY_MAX,
        placeholder="What do you want to post?"), optional=True))

    chosen = form.accounts[:MAX_OVERRIDES]
    for account in chosen:
        blocks.append(_input(
            f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}{account.value}", f"Text for {account.label} only",
            _text_input(ids.COMPOSE_OVERRIDE, form.overrides.get(account.value, ""), multiline=True,
                        max_length=BODY_MAX, placeholder="Leave empty to post the text above"),
            optional=True))
    if len(form.accounts) > MAX_OVERRIDES:
        blocks.append(context(f"Per-account text is offered for the first {MAX_OVERRIDES} accounts."))

    if modal.kept_media:
        names = ", ".join(modal.kept_media)
        option = {"text": _text(f"Keep {names}", OPTION_TEXT_MAX), "value": "keep"}
        element = {"type": "checkboxes", "action_id": ids.COMPOSE_KEEP_MEDIA, "options": [option]}
        if form.keep_media:
            element["initial_options"] = [option]
        blocks.append(_input(ids.COMPOSE_KEEP_MEDIA_BLOCK, "Attached from Slack", element,
                             optional=True, hint="Untick to remove it; a new file replaces it."))
    url_element = {"type": "url_text_input", "action_id": ids.COMPOSE_MEDIA_URL,
                   "placeholder": _text("https://…")}
    if form.media_url:
        url_element["initial_value"] = form.media_url
    blocks.append(_input(ids.COMPOSE_MEDIA_URL_BLOCK, "Image or video link", url_element,
                         optional=True, hint="A public address networks can fetch the file from."))
    blocks.append(_input(ids.COMPOSE_MEDIA_FILE_BLOCK, "Or a file from Slack", {
        "type": "file_input", "action_id": ids.COMPOSE_MEDIA_FILE, "filetypes": FILE_TYPES,
        "max_files": MAX_FILES}, optional=True))
    blocks.append(_input(ids.COMPOSE_ALT_TEXT_BLOCK, "Alt text", _text_input(
        ids.COMPOSE_ALT_TEXT, form.alt_text, max_length=ALT_TEXT_MAX,
        placeholder="Describe the image for people who can't see it"), optional=True))

    date_element = {"type": "datepicker", "action_id": ids.COMPOSE_DATE,
                    "placeholder": _text("Pick a day")}
    if form.date:
        date_element["initial_date"] = form.date
    time_element = {"type": "timepicker", "action_id": ids.COMPOSE_TIME,
                    "placeholder": _text("Pick a time"), "timezone": modal.zone}
    if form.time:
        time_element["initial_time"] = form.time
    blocks.append(_input(ids.COMPOSE_DATE_BLOCK, "Publish on", date_element, optional=True))
    zone_hint = (f"Your time zone: {modal.zone}." if modal.personal_zone else
                 f"Slack didn't share your time zone, so this is {modal.zone} time.")
    blocks.append(_input(ids.COMPOSE_TIME_BLOCK, "At", time_element, optional=True, hint=zone_hint))
    blocks.append(_input(ids.COMPOSE_TAGS_BLOCK, "Tags", _text_input(
        ids.COMPOSE_TAGS, form.tags, max_length=500, placeholder="launch, spring"),
        optional=True, hint="Separate tags with commas."))
    blocks.append(_intent_block(form.intent))

    return _modal(TITLE_EDIT if modal.editing else TITLE_NEW, blocks, submit="Save",
                  callback_id=ids.COMPOSE_VIEW, metadata=modal.metadata.dumps())


def _text_input(action_id: str, initial: str, *, multiline: bool = False, max_length: int = 3000,
                placeholder: str | None = None) -> dict:
    element = {"type": "plain_text_input", "action_id": action_id, "multiline": multiline,
               "max_length": max_length}
    if initial:
        element["initial_value"] = initial[:max_length]
    if placeholder:
        element["placeholder"] = _text(placeholder)
    return element


def _project_block(modal: ComposeModal) -> dict:
    options = [_option(p) for p in modal.projects[:MAX_STATIC_OPTIONS]]
    element = {"type": "static_select", "action_id": ids.COMPOSE_PROJECT,
               "placeholder": _text("Choose a project"), "options": options}
    wanted = modal.form.project_id or (modal.projects[0].value if len(modal.projects) == 1 else None)
    initial = next((o for o in options if o["value"] == wanted), None)
    if initial:
        element["initial_option"] = initial
    return _input(ids.COMPOSE_PROJECT_BLOCK, "Project", element)


def _accounts_block(modal: ComposeModal) -> dict:
    chosen = modal.form.account_ids
    if modal.external_accounts:
        element = {"type": "multi_external_select", "action_id": ids.COMPOSE_ACCOUNTS,
                   "placeholder": _text("Type to find accounts"), "min_query_length": 0}
        if modal.form.accounts:
            element["initial_options"] = [_option(a) for a in modal.form.accounts]
    else:
        element = {"type": "multi_static_select", "action_id": ids.COMPOSE_ACCOUNTS,
                   "placeholder": _text("Choose accounts")}
        choices = modal.accounts[:MAX_STATIC_OPTIONS]
        groups = list(dict.fromkeys(a.group for a in choices))
        if len(groups) > 1:
            element["option_groups"] = [
                {"label": _text(group or "Not in a project", 75),
                 "options": [_option(a) for a in choices if a.group == group]} for group in groups]
        else:
            element["options"] = [_option(a) for a in choices]
        initial = [_option(a) for a in choices if a.value in chosen]
        if initial:
            element["initial_options"] = initial
    return _input(ids.COMPOSE_ACCOUNTS_BLOCK, "Post to", element, dispatch=True,
                  hint="Each account can get its own text once chosen.")


def _intent_block(intent: str) -> dict:
    options = [
        {"text": _text("Submit for approval"), "value": ids.INTENT_SUBMIT,
         "description": _text("Projects that need no approval schedule it straight away.")},
        {"text": _text("Save as draft"), "value": ids.INTENT_DRAFT,
         "description": _text("Keep working on it later with /social drafts.")},
    ]
    initial = next((o for o in options if o["value"] == intent), options[0])
    return _input(ids.COMPOSE_INTENT_BLOCK, "When I save", {
        "type": "radio_buttons", "action_id": ids.COMPOSE_INTENT, "options": options,
        "initial_option": initial})


def account_label(network: str, handle: str, status: str = "active") -> str:
    """How an account reads in selects and labels: "X @brand (needs reconnecting)"."""
    text = f"{network} @{handle}" if handle else network
    if status == "needs_reauth":
        text += " (needs reconnecting)"
    elif status != "active":
        text += f" ({status})"
    return text if len(text) <= OPTION_TEXT_MAX else text[:OPTION_TEXT_MAX - 1] + "…"


def lengths_line(lengths: list[Length]) -> str:
    parts = []
    for item in lengths:
        mark = " :warning: too long" if item.count > item.limit else ""
        parts.append(f"{escape(item.network)} {item.count}/{item.limit}{mark}")
    return " · ".join(parts)


# --------------------------------------------------------------------------------------
# Reading a submitted (or dispatched) view back


def read_form(view: dict) -> Form:
    """The Form in a view's state (view_submission and block_actions carry it)."""
    values = ((view or {}).get("state") or {}).get("values") or {}

    def element(block_id: str, action_id: str) -> dict:
        found = (values.get(block_id) or {}).get(action_id)
        return found if isinstance(found, dict) else {}

    def text(block_id: str, action_id: str) -> str:
        value = element(block_id, action_id).get("value")
        return value if isinstance(value, str) else ""

    project = element(ids.COMPOSE_PROJECT_BLOCK, ids.COMPOSE_PROJECT).get("selected_option") or {}
    accounts = [Option(value=str(o.get("value", "")), label=_label_of(o))
                for o in element(ids.COMPOSE_ACCOUNTS_BLOCK, ids.COMPOSE_ACCOUNTS)
                .get("selected_options") or [] if isinstance(o, dict) and o.get("value")]
    overrides = {}
    for block_id, actions in values.items():
        if block_id.startswith(ids.COMPOSE_OVERRIDE_BLOCK_PREFIX) and isinstance(actions, dict):
            value = (actions.get(ids.COMPOSE_OVERRIDE) or {}).get("value")
            if isinstance(value, str) and value.strip():
                overrides[block_id[len(ids.COMPOSE_OVERRIDE_BLOCK_PREFIX):]] = value
    files = [f for f in element(ids.COMPOSE_MEDIA_FILE_BLOCK, ids.COMPOSE_MEDIA_FILE).get("files") or []
             if isinstance(f, dict) and f.get("id")]
    keep_state = element(ids.COMPOSE_KEEP_MEDIA_BLOCK, ids.COMPOSE_KEEP_MEDIA)
    keep = bool(keep_state.get("selected_options")) if keep_state else True
    intent = (element(ids.COMPOSE_INTENT_BLOCK, ids.COMPOSE_INTENT).get("selected_option") or {}).get("value")
    return Form(
        project_id=project.get("value") or None,
        accounts=accounts,
        body=text(ids.COMPOSE_BODY_BLOCK, ids.COMPOSE_BODY),
        overrides=overrides,
        media_url=text(ids.COMPOSE_MEDIA_URL_BLOCK, ids.COMPOSE_MEDIA_URL).strip(),
        files=files,
        keep_media=keep,
        alt_text=text(ids.COMPOSE_ALT_TEXT_BLOCK, ids.COMPOSE_ALT_TEXT).strip(),
        date=element(ids.COMPOSE_DATE_BLOCK, ids.COMPOSE_DATE).get("selected_date") or None,
        time=element(ids.COMPOSE_TIME_BLOCK, ids.COMPOSE_TIME).get("selected_time") or None,
        tags=text(ids.COMPOSE_TAGS_BLOCK, ids.COMPOSE_TAGS),
        intent=ids.INTENT_DRAFT if intent == ids.INTENT_DRAFT else ids.INTENT_SUBMIT,
    )


def _label_of(option: dict) -> str:
    text = option.get("text")
    if isinstance(text, dict):
        return str(text.get("text") or option.get("value"))
    return str(option.get("value"))


def errors_for(field_errors: dict[str, str], form: Form) -> dict[str, str]:
    """core's field keys → the modal's block ids. Keys without a block of their own land on
    the text block, so no message is lost."""
    blocks = {"project": ids.COMPOSE_PROJECT_BLOCK, "accounts": ids.COMPOSE_ACCOUNTS_BLOCK,
              "body": ids.COMPOSE_BODY_BLOCK, "schedule": ids.COMPOSE_DATE_BLOCK,
              "tags": ids.COMPOSE_TAGS_BLOCK,
              "media": ids.COMPOSE_MEDIA_URL_BLOCK if form.media_url else ids.COMPOSE_MEDIA_FILE_BLOCK}
    shown = set(form.account_ids[:MAX_OVERRIDES])
    out: dict[str, str] = {}
    for key, message in field_errors.items():
        if key.startswith("override:") and key[len("override:"):] in shown:
            block = f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}{key[len('override:'):]}"
        else:
            block = blocks.get(key, ids.COMPOSE_BODY_BLOCK)
        out[block] = f"{out[block]} {message}" if block in out else message
    return out


_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")
_MENTION = re.compile(r"<([@#!])([^|>]+)(?:\|([^>]*))?>")


def plain_text_of(message_text: str) -> str:
    """A Slack message's text as someone would type it: links unwrapped to their address,
    mentions to their label, entities decoded."""
    text = _LINK.sub(lambda m: m.group(1), message_text or "")
    text = _MENTION.sub(lambda m: (("@" if m.group(1) == "@" else "#" if m.group(1) == "#" else "@")
                                   + (m.group(3) or m.group(2))), text)
    return html.unescape(text)[:BODY_MAX]
