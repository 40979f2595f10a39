"""The Teams app package an admin uploads to the org catalog: manifest.json and its two icons.

GCC High and DoD take no sideloading and lag on manifest versions, so the manifest is a plain
bot-only one at schema 1.10 (the newest that Microsoft documented as accepted in GCC High) with
nothing a later schema added."""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.teams import TeamsSettings

MANIFEST_VERSION = "1.10"
SCHEMA = ("https://developer.microsoft.com/en-us/json-schemas/teams/"
          f"v{MANIFEST_VERSION}/MicrosoftTeams.schema.json")
ACCENT = (0x1F, 0x3A, 0x5F)  # the colour icon's background, also the manifest's accentColor

# `notice <command>` as Teams suggests it in the compose box (title ≤ 32, description ≤ 128).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("notice open", "Open a case for an INTERPOL notice (a form opens)"),
    ("notice list", "Your open cases"),
    ("notice show", "A case's checklist: notice show RN-2026-0001"),
    ("notice training", "Your training status"),
    ("notice delegate", "Delegate your approvals while away: notice delegate @someone until "
                        "YYYY-MM-DD"),
    ("notice reassign", "Hand a departed officer's case on: notice reassign ID @officer"),
    ("notice hold", "Litigation holds (records officers)"),
    ("notice digest", "The weekly digest now (managers)"),
    ("notice help", "What noticebot can do"),
)
HOME = ("notice home", "Your cases, approvals and training at a glance")


# The manifest's own limits (Teams refuses an upload that breaks one, with little to go on).
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*"
                  r"[A-Za-z0-9])?)+(:[0-9]{1,5})?$")
DEVELOPER_NAME_MAX = 32
URL_MAX = 2048


def public_host_name(settings: TeamsSettings) -> str:
    """NOTICEBOT_TEAMS_PUBLIC_HOST as the manifest names it: the host alone."""
    return settings.public_host.removeprefix("https://").rstrip("/")


def package_problems(settings: TeamsSettings, *, version: str, developer: str,
                     urls: dict[str, str]) -> list[str]:
    """Why the package would be refused on upload (empty: it would not, as far as its fields
    go). `urls`: option name -> the URL given for it."""
    found = []
    if not GUID.match(settings.client_id):
        found.append(f"NOTICEBOT_TEAMS_CLIENT_ID ({settings.client_id}) must be the bot's app "
                     "id, a GUID")
    if not HOST.match(public_host_name(settings)):
        found.append(f"NOTICEBOT_TEAMS_PUBLIC_HOST ({settings.public_host}) must be the host "
                     "name Teams calls, e.g. noticebot.agency.gov (https only, no path)")
    if not SEMVER.match(version):
        found.append(f"--version ({version}) must be MAJOR.MINOR.PATCH, e.g. 1.0.1")
    if not developer.strip() or len(developer) > DEVELOPER_NAME_MAX:
        found.append(f"--developer must be 1 to {DEVELOPER_NAME_MAX} characters "
                     f"({len(developer)} given)")
    for option, url in urls.items():
        if not url.startswith("https://") or len(url) > URL_MAX or not HOST.match(
                url.removeprefix("https://").split("/", 1)[0]):
            found.append(f"{option} ({url}) must be an https:// address")
    return found


def manifest(settings: TeamsSettings, *, version: str, developer: str, website: str,
             privacy: str, terms: str) -> dict[str, Any]:
    host = public_host_name(settings)

    def commands(items: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
        return [{"title": t, "description": d} for t, d in items]

    return {
        "$schema": SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": settings.client_id,
        "developer": {"name": developer, "websiteUrl": website, "privacyUrl": privacy,
                      "termsOfUseUrl": terms},
        "name": {"short": "noticebot", "full": "noticebot: INTERPOL notice checklist"},
        "description": {
            "short": "Walks officers through the directive's checks on an INTERPOL notice.",
            "full": ("Opens a case for an INTERPOL notice, walks the officer through each check "
                     "the directive requires before the notice is relied on, routes approvals "
                     "to the supervisor and keeps the record. Subject details stay in dialogs "
                     "and 1:1 chats."),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [{
            "botId": settings.client_id,
            "scopes": ["personal", "team"],
            "supportsFiles": False,
            "isNotificationOnly": False,
            "commandLists": [
                {"scopes": ["personal"], "commands": commands((*COMMANDS[:-1], HOME,
                                                               COMMANDS[-1]))},
                {"scopes": ["team"], "commands": commands(COMMANDS)},
            ],
        }],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [host] if host else [],
    }


def png(size: int, pixel: Callable[[int, int], tuple[int, int, int, int]]) -> bytes:
    """An RGBA PNG, written by hand (no imaging library for two icons)."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(size))
                    for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def _mark(x: float, y: float) -> bool:
    """A check mark in the unit square: two strokes."""
    def near(ax: float, ay: float, bx: float, by: float) -> bool:
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
        return (x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2 < 0.075 ** 2

    return near(0.22, 0.52, 0.42, 0.72) or near(0.42, 0.72, 0.80, 0.30)


def color_icon() -> bytes:
    """192×192, full colour: a white check mark on the accent colour."""
    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        return (255, 255, 255, 255) if _mark(x / 192, y / 192) else (*ACCENT, 255)

    return png(192, pixel)


def outline_icon() -> bytes:
    """32×32: white on transparent, as Teams requires of the outline icon."""
    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        return (255, 255, 255, 255) if _mark((x + 0.5) / 32, (y + 0.5) / 32) else (0, 0, 0, 0)

    return png(32, pixel)


def write_package(out: Path, data: dict[str, Any]) -> Path:
    """manifest.json, color.png and outline.png in `out`, and the zip of the three."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"manifest.json": json.dumps(data, indent=2).encode() + b"\n",
             "color.png": color_icon(), "outline.png": outline_icon()}
    for name, content in files.items():
        (out / name).write_bytes(content)
    archive = out / "noticebot-teams.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in files.items():
            bundle.writestr(name, content)
    return archive
