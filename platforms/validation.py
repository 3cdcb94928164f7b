"""Content checks every adapter shares, driven by its Capabilities."""
from __future__ import annotations


def validate_content(adapter, text: str, media: list) -> list[str]:
    caps = adapter.capabilities
    label = adapter.label
    problems: list[str] = []
    length = adapter.count(text)
    if length > caps.text_limit:
        problems.append(f"{label} allows {caps.text_limit} characters ({caps.counting}); "
                        f"this is {length}.")
    if caps.max_bytes is not None and len(text.encode("utf-8")) > caps.max_bytes:
        problems.append(f"{label} allows {caps.max_bytes} bytes of text; this is "
                        f"{len(text.encode('utf-8'))}.")
    images = [m for m in media if m.kind == "image"]
    videos = [m for m in media if m.kind == "video"]
    if not text.strip() and not media:
        problems.append(f"{label} needs some text or media.")
    if caps.requires_media and not media:
        problems.append(f"{label} needs an image or a video.")
    if images and not caps.publish_image:
        problems.append(f"{label} doesn't take images here.")
    if videos and not caps.publish_video:
        problems.append(f"{label} doesn't take videos.")
    for item in media:
        allowed = caps.image_mimes if item.kind == "image" else caps.video_mimes
        if item.mime not in allowed:
            problems.append(f"{label} doesn't accept {item.mime} "
                            f"({', '.join(sorted(allowed)) or 'nothing'} only).")
    if len(images) > caps.max_images:
        problems.append(f"{label} takes at most {caps.max_images} images.")
    if len(videos) > caps.max_videos:
        problems.append(f"{label} takes at most {caps.max_videos} video.")
    if images and videos and not caps.mixed_media:
        problems.append(f"{label} can't mix images and a video in one post.")
    return problems
