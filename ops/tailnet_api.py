"""Reads the live tailnet as pulumi-tailscale's import reads it (for ``ops adopt``, issue 25): GETs only.

pulumi-tailscale 0.29.2 bridges terraform-provider-tailscale v0.29.2 (fc9a21bf), which calls the API through
tailscale/tailscale-client-go-v2 v2.9.0 (4f50555a). What its Read of each imported resource asks:

- ``tailscale_acl`` (``tailscale/resource_acl.go``): ``PolicyFile().Raw``, i.e. ``GET
  /api/v2/tailnet/{tailnet}/acl`` with ``Accept: application/hujson``; the text is kept as the API sends it
  (comments and all) with its ``ETag`` header (``policyfile.go``);
- ``tailscale_device_tags`` (``tailscale/resource_device_tags.go``): ``Devices().Get(id)``, i.e. ``GET
  /api/v2/device/{nodeId}`` with no query (``devices.go``); a 404 removes the resource (the device is gone);
- ``tailscale_service`` (``tailscale/resource_service.go``): ``VIPServices().Get(name)``, i.e. ``GET
  /api/v2/tailnet/{tailnet}/vip-services/{name}`` (``vip_services.go``); a 404 means there is none.

The node IDs come from ``GET /api/v2/tailnet/{tailnet}/devices`` (``{"devices": [...]}``), the list the program's
``getDevice`` reads (``tailscale/data_source_device.go``, there filtered by ``name``). Path segments are escaped
as the client's ``buildURL`` escapes them; JSON calls ask ``Accept: application/json`` (``client.go``).
Credentials are the provider's (``tailscale/provider_framework.go``, ``provider_sdk.go``): an API key, or an
OAuth client exchanged at ``{base}/api/v2/oauth/token`` (``oauth.go``), never both. The token is sent as
``Authorization: Bearer``, which the API takes for either (tailscale/tailscale ``publicapi/readme.md`` at
afec2d41).
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPException
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_BASE_URL = "https://api.tailscale.com"
TOKEN_PATH = "/api/v2/oauth/token"
API_KEY = "TAILSCALE_API_KEY"
CLIENT_ID = "TAILSCALE_OAUTH_CLIENT_ID"
CLIENT_SECRET = "TAILSCALE_OAUTH_CLIENT_SECRET"
# the provider's fallbacks for the OAuth client (provider_framework.go at v0.29.2)
_FALLBACKS = {CLIENT_ID: "OAUTH_CLIENT_ID", CLIENT_SECRET: "OAUTH_CLIENT_SECRET"}
_SET_CREDENTIALS = f"set {CLIENT_ID}/{CLIENT_SECRET} (or {API_KEY})"
_USER_AGENT = "blumeops-ops-adopt"


class TailnetApiError(Exception):
    """A read of the tailnet that failed, with what failed and what to do about it (never a secret)."""


@dataclass(frozen=True, slots=True)
class Device:
    """A device of the tailnet as the API names it (``indri.tail8d86e.ts.net``), its node ID and tags."""

    name: str
    node_id: str
    tags: tuple[str, ...]


def _names(device_name: str, wanted: str) -> bool:
    """``indri`` names ``indri.<tailnet>.ts.net``; a name with a dot must be the whole MagicDNS name."""
    have, want = device_name.lower().rstrip("."), wanted.lower().rstrip(".")
    return have == want if "." in want else have.split(".", 1)[0] == want


@dataclass(frozen=True, slots=True)
class LiveTailnet:
    """The tailnet as read: the policy as stored (HuJSON text) and its ETag (the header's value, quoted as
    sent), the tailnet's own devices (not those shared in from another tailnet), the named Services found."""

    policy: str
    policy_etag: str
    devices: tuple[Device, ...]
    services: Mapping[str, Mapping[str, Any]]

    def device(self, name: str) -> Device | None:
        """The device ``name`` names: a short name (``indri``) or the whole MagicDNS name."""
        return next((device for device in self.devices if _names(device.name, name)), None)


# ---- HTTP --------------------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, never followed (urllib would carry the token to wherever it points)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _base(base_url: str) -> tuple[str, bool]:
    """The base URL without a trailing slash, and whether it is loopback (a test's stand-in: no proxy)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise TailnetApiError(f"the Tailscale API URL {base_url!r} must be https (plain http only to loopback)")
    if parts.query or parts.fragment or not host:
        raise TailnetApiError(f"the Tailscale API URL {base_url!r} is not a base URL like {DEFAULT_BASE_URL}")
    return base_url.rstrip("/"), loopback


def _opener(loopback: bool) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if loopback:  # as Go's ProxyFromEnvironment, loopback never goes through a proxy
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: Message
    body: bytes


def _timed_out(what: str, timeout: float) -> TailnetApiError:
    return TailnetApiError(f"{what} did not answer within {timeout:g}s: try again, or check the network path to "
                           "the Tailscale API")


def _send(opener: urllib.request.OpenerDirector, request: urllib.request.Request, what: str,
          timeout: float) -> _Answer:
    try:
        with opener.open(request, timeout=timeout) as response:
            return _Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return _Answer(error.code, error.headers, error.read())
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise _timed_out(what, timeout) from None
        raise TailnetApiError(f"{what}: could not reach the Tailscale API ({error.reason}): check the network "
                              "and the API URL") from None
    except TimeoutError:
        raise _timed_out(what, timeout) from None
    except (OSError, HTTPException) as error:
        raise TailnetApiError(f"{what}: the connection to the Tailscale API failed ({type(error).__name__}): "
                              "try again") from None


def _api_message(body: bytes, secrets: Iterable[str]) -> str:
    """The API's own ``message`` (its APIError, client.go), short and with every secret taken out."""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(message, str) or not message:
        return ""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return f" (the API says: {message[:200]})"


def _refused(what: str, answer: _Answer, secrets: Iterable[str], tailnet: str | None = None) -> TailnetApiError:
    status = answer.status
    if status == 401:
        fix = f"the token is refused: {_SET_CREDENTIALS} to a credential of this tailnet that has not expired"
    elif status == 403:
        fix = ("the credential may not read this: give the OAuth client read access to the policy file, devices "
               f"and Services (the all:read scope covers them), or use an admin's {API_KEY}")
    elif status == 404 and tailnet is not None:
        fix = f"no tailnet {tailnet!r} for this credential: use '-' (the credential's own tailnet) or its tailnet ID"
    elif status == 429:
        fix = "the API is rate limiting these calls: try again in a minute"
    elif status >= 500:
        fix = "the Tailscale API failed: try again later"
    else:
        fix = "not an answer this read expects"
    return TailnetApiError(f"{what} answered HTTP {status}: {fix}{_api_message(answer.body, secrets)}")


def _json_object(what: str, body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise TailnetApiError(f"{what} answered something that is not a JSON object: is the API URL right?")
    return parsed


# ---- credentials -------------------------------------------------------------------------------------------


def _setting(environ: Mapping[str, str], name: str) -> str:
    """A variable's value (or its fallback's), read from a file if it is ``file:<path>`` as the provider does
    (``resolveValueFromFile`` in provider_framework.go at v0.29.2)."""
    value = environ.get(name) or environ.get(_FALLBACKS.get(name, ""), "") or ""
    path = value.removeprefix("file:") if value.startswith("file:") else None
    if path is None:
        return value.strip()
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise TailnetApiError(f"{name} names the file {path!r}, which cannot be read ({error.strerror})") from None


def access_token(base_url: str, environ: Mapping[str, str], timeout: float = 10.0) -> str:
    """The token to read the tailnet with: ``TAILSCALE_API_KEY``, or an access token for the OAuth client
    ``TAILSCALE_OAUTH_CLIENT_ID``/``TAILSCALE_OAUTH_CLIENT_SECRET`` (client credentials, ``POST
    {base}/api/v2/oauth/token``). Both set is refused, as the provider refuses it (``validateProviderCreds``,
    provider_sdk.go at v0.29.2): ``pulumi import`` would fail on them."""
    api_key, client_id, secret = (_setting(environ, name) for name in (API_KEY, CLIENT_ID, CLIENT_SECRET))
    if api_key and (client_id or secret):
        raise TailnetApiError(f"{API_KEY} and an OAuth client ({CLIENT_ID}/{CLIENT_SECRET}) are both set, which "
                              "the Tailscale provider refuses: unset one of them")
    if api_key:
        if any(c in api_key for c in "\r\n "):
            raise TailnetApiError(f"{API_KEY} holds whitespace inside it: set it to the key alone (tskey-api-...)")
        return api_key
    if not client_id and not secret:
        raise TailnetApiError(f"no Tailscale credential: set {CLIENT_ID} and {CLIENT_SECRET} (an OAuth client "
                              f"with read access to the policy file, devices and Services), or {API_KEY}")
    if not client_id or not secret:
        missing, present = (CLIENT_ID, CLIENT_SECRET) if not client_id else (CLIENT_SECRET, CLIENT_ID)
        raise TailnetApiError(f"{present} is set but {missing} is not: set both (the OAuth client's ID and "
                              f"secret), or {API_KEY} instead")
    base, loopback = _base(base_url)
    what = f"POST {TOKEN_PATH}"
    request = urllib.request.Request(
        base + TOKEN_PATH, method="POST",
        data=urlencode({"grant_type": "client_credentials", "client_id": client_id,
                        "client_secret": secret}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                 "User-Agent": _USER_AGENT})
    answer = _send(_opener(loopback), request, what, timeout)
    if answer.status in (400, 401):
        raise TailnetApiError(f"{what} answered HTTP {answer.status}: the OAuth client is refused: check {CLIENT_ID} "
                              f"and {CLIENT_SECRET} (the client's ID and secret, and that it is not revoked), or "
                              f"set {API_KEY} instead{_api_message(answer.body, (secret,))}")
    if not 200 <= answer.status < 300:
        raise _refused(what, answer, (secret,))
    token = _json_object(what, answer.body).get("access_token")
    if not isinstance(token, str) or not token or any(c in token for c in "\r\n "):
        raise TailnetApiError(f"{what} answered without a usable access_token: is the API URL right?")
    return token


# ---- the reads ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reader:
    base: str
    opener: urllib.request.OpenerDirector
    token: str
    timeout: float

    def get(self, path: str, accept: str, tailnet: str | None = None) -> _Answer:
        """A GET that must answer 2xx (``tailnet``: named in the fix of a 404)."""
        answer = self._get(path, accept)
        if not 200 <= answer.status < 300:
            raise _refused(f"GET {path}", answer, (self.token,), tailnet)
        return answer

    def find(self, path: str) -> dict[str, Any] | None:
        """A JSON GET where a 404 means "there is none" (None), as the provider's Read takes it."""
        answer = self._get(path, "application/json")
        if answer.status == 404:
            return None
        if not 200 <= answer.status < 300:
            raise _refused(f"GET {path}", answer, (self.token,))
        return _json_object(f"GET {path}", answer.body)

    def _get(self, path: str, accept: str) -> _Answer:
        request = urllib.request.Request(self.base + path, method="GET", headers={
            "Accept": accept, "Authorization": f"Bearer {self.token}", "User-Agent": _USER_AGENT})
        return _send(self.opener, request, f"GET {path}", self.timeout)


def _segment(value: str) -> str:
    """One path segment, escaped as Go's url.PathEscape escapes it (client.go's buildURL): ``:@$&+=`` kept."""
    return quote(value, safe=":@$&+=")


def _device(what: str, entry: Any) -> tuple[Device, bool]:
    """A device of an answer, and whether it is shared in from another tailnet (``isExternal``)."""
    if not isinstance(entry, dict):
        raise TailnetApiError(f"{what} answered a device that is not an object")
    name, node_id, tags = entry.get("name"), entry.get("nodeId"), entry.get("tags") or []
    if not isinstance(name, str) or not name or not isinstance(node_id, str) or not node_id \
            or not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise TailnetApiError(f"{what} answered a device without a name, a nodeId or a list of tags")
    return Device(name, node_id, tuple(tags)), entry.get("isExternal") is True


def read_tailnet(base_url: str, tailnet: str, token: str, service_names: Iterable[str], timeout: float = 10.0, *,
                 device_names: Iterable[str] | None = None) -> LiveTailnet:
    """The tailnet as the provider's import reads it, GETs only: the policy (HuJSON as stored, with its ETag),
    the device list, each device read by node ID (its tags as ``tailscale_device_tags`` imports them; only
    ``device_names``, short or MagicDNS names, when given; a device that is gone by then is left out), and each
    named Service (a 404: not there, left out of ``services``). Any other answer than a 2xx is a
    TailnetApiError naming the call and the status. ``tailnet``: ``-`` (the credential's own tailnet), or the
    tailnet's ID or name."""
    if not token or any(c in token for c in "\r\n "):
        raise TailnetApiError(f"the token is empty or holds whitespace: {_SET_CREDENTIALS}")
    base, loopback = _base(base_url)
    reader = _Reader(base, _opener(loopback), token, timeout)
    scope = f"/api/v2/tailnet/{_segment(tailnet)}"

    acl = reader.get(f"{scope}/acl", "application/hujson", tailnet)
    try:
        policy = acl.body.decode()
    except UnicodeDecodeError:
        raise TailnetApiError(f"GET {scope}/acl answered a policy that is not UTF-8 text") from None

    path = f"{scope}/devices"
    entries = _json_object(f"GET {path}", reader.get(path, "application/json", tailnet).body).get("devices")
    if not isinstance(entries, list):
        raise TailnetApiError(f"GET {path} answered without a list of devices")
    own = [device for device, external in (_device(f"GET {path}", entry) for entry in entries) if not external]
    wanted = None if device_names is None else list(device_names)
    devices: list[Device] = []
    for device in own:
        if wanted is not None and not any(_names(device.name, name) for name in wanted):
            continue
        device_path = f"/api/v2/device/{_segment(device.node_id)}"
        read = reader.find(device_path)
        if read is not None:
            devices.append(_device(f"GET {device_path}", read)[0])

    services: dict[str, Mapping[str, Any]] = {}
    for name in service_names:
        found = reader.find(f"{scope}/vip-services/{_segment(name)}")
        if found is not None:
            services[name] = found
    return LiveTailnet(policy, acl.headers.get("ETag") or "", tuple(devices), MappingProxyType(services))
