"""The capability table in platforms/README.md, generated from the adapters themselves:
`python -m platforms.table` prints it (a test checks the README carries the same)."""
from __future__ import annotations

from platforms.registry import NETWORKS, adapter_class

NO = "no (network doesn't offer)"


def _yes(flag: bool, detail: str = "") -> str:
    return (f"yes{' — ' + detail if detail else ''}") if flag else NO


def rows() -> list[list[str]]:
    table = []
    for name in NETWORKS:
        cls = adapter_class(name)
        caps = cls.capabilities
        text = f"{caps.text_limit} {caps.counting}"
        if caps.max_bytes and "bytes" not in caps.counting:
            text += f", at most {caps.max_bytes} bytes"
        metrics = sorted(caps.account_metrics) and "account: " + ", ".join(sorted(caps.account_metrics))
        post = caps.post_metrics and "post: " + ", ".join(sorted(caps.post_metrics))
        table.append([
            cls.label,
            _yes(caps.publish_text and not caps.requires_media, text) if not caps.requires_media
            else f"{NO}: media required; caption {text}",
            _yes(caps.publish_image, f"up to {caps.max_images}"),
            _yes(caps.publish_video),
            _yes(caps.refresh),
            _yes(caps.rotates_refresh_token),
            _yes(caps.idempotency),
            _yes(caps.reconcile),
            _yes(caps.delete),
            "; ".join(filter(None, [metrics, post])) or NO,
        ])
    return table


HEADER = ["Network", "Publish text", "Image", "Video", "Refresh", "Rotation", "Idempotency",
          "Reconcile", "Delete", "Metrics"]


def markdown() -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
