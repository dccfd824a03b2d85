"""Phase 8, Woodpecker CI: the forge's OAuth2 application made by the program, and the woodpecker chart at ``ci``
logging in through it, with the Kubernetes backend on the one node.

Takes indri, the cluster's providers (phase 0), the ProxyClass (phase 1) and the forge (phase 7). One
``pulumi up`` from 7 to 8 runs: the OAuth2 application ``woodpecker`` on the forge (callback
``https://ci.<tailnet>/authorize``; one of that name is adopted with a new secret, never duplicated; or its id and
secret come from config when ``blumeops:woodpecker.oauthFromConfig`` is true), the namespace ``woodpecker``
(kept by a rollback, with the server's claim), the Secrets, the chart, the Ingress ``ci`` (``tag:ci``).

Lowering the target to 7 removes the Ingress, the chart, the Secrets and the forge's OAuth2 application (the
program made it); the namespace and the server's claim stay with the CI's history.
"""

from __future__ import annotations

import pulumi

from components.apps.forgejo import Forgejo
from components.apps.woodpecker import OAuthClient, Woodpecker, WoodpeckerArgs
from components.host.forgejo_oauth import ForgejoOAuthApp, ForgejoOAuthAppArgs
from phases import Handover, Phase
from phases import settings as s
from phases.p0_foundation import INDRI, KEPT_STATE, KUBERNETES, TAILNET_POLICY, proxy_tag_part
from phases.p1_kubernetes import PROXY_CLASS
from phases.p7_forgejo import FORGE


def _logins(raw: object) -> tuple[str, ...]:
    found = tuple(str(item) for item in s.json_list(raw))
    if not found or any(not login or "," in login or any(c.isspace() for c in login) for login in found):
        raise s.InvalidValueError("must be a JSON list of forge logins, e.g. '[\"eblume\"]'")
    return found


@s.section("woodpecker")
class WoodpeckerSettings:
    """Woodpecker CI, and the forge's OAuth2 application it logs in with."""

    chart_version: str = s.setting(s.chart_version, "woodpecker chart version (charts.lock.yaml pins it)",
                                   default="3.6.5")
    hostname: str = s.setting(s.dns_label, "the CI's tailnet hostname", default="ci")
    agent_secret: pulumi.Output[str] = s.setting(
        s.text, "the secret the agent and server share (any long random string)", secret=True, required=True,
        example="\"$(openssl rand -hex 32)\"")
    admins: tuple[str, ...] = s.setting(_logins, "forge logins that administer the CI", default=("eblume",),
                                        example="'[\"eblume\"]'")
    application_name: str = s.setting(s.text, "the OAuth2 application's name on the forge", default="woodpecker")
    oauth_from_config: bool = s.setting(
        s.boolean, "take the OAuth2 client from woodpecker.oauthClient* instead of making it on the forge",
        default=False, example="true")
    forgejo_token: pulumi.Output[str] | None = s.setting(
        s.text, "a forge admin's token with scope write:user (makes the OAuth2 application)", secret=True,
        required=True, unless="oauthFromConfig", example="<token>")
    oauth_client_id: pulumi.Output[str] | None = s.setting(
        s.text, "the OAuth2 client id (with oauthFromConfig)", secret=True, example="<client-id>")
    oauth_client_secret: pulumi.Output[str] | None = s.setting(
        s.text, "the OAuth2 client secret (with oauthFromConfig)", secret=True, example="<client-secret>")

    def __post_init__(self) -> None:
        if self.oauth_from_config and (self.oauth_client_id is None or self.oauth_client_secret is None):
            raise ValueError("oauthFromConfig needs woodpecker.oauthClientId and woodpecker.oauthClientSecret")


SETTINGS = (WoodpeckerSettings,)

# ci's proxy carries tag:ci: it pulls from and pushes its images to zot, and reaches the forge
AMENDS = (TAILNET_POLICY.extend((proxy_tag_part(
    "P8", "tag:ci", {"src": ["tag:ci"], "dst": ["tag:registry", "svc:registry"], "ip": ["tcp:443"]},
    {"src": ["tag:ci"], "dst": ["tag:forge"], "ip": ["tcp:443", "tcp:22"]},
    tests=({"src": "tag:ci", "accept": ["tag:registry:443", "tag:forge:443", "tag:forge:22"],
            "deny": ["tag:homelab:22", "tag:nas:445", "tag:pg:5432"]},)),)),)


def build(phase: Phase, handover: Handover) -> None:
    host = handover.take(INDRI)
    tailnet = handover.settings.tailnet
    woodpecker = handover.section(WoodpeckerSettings)
    forge: Forgejo = handover.take(FORGE)
    forge_url = forge.root_url.rstrip("/")
    host_url = f"https://{woodpecker.hostname}.{tailnet.name}"
    if woodpecker.oauth_from_config:
        assert woodpecker.oauth_client_id is not None and woodpecker.oauth_client_secret is not None
        oauth = OAuthClient(woodpecker.oauth_client_id, woodpecker.oauth_client_secret)
    else:
        assert woodpecker.forgejo_token is not None
        app = ForgejoOAuthApp(
            "woodpecker", ForgejoOAuthAppArgs(host=host, forge_url=forge_url, name=woodpecker.application_name,
                                              redirect_uri=f"{host_url}/authorize", token=woodpecker.forgejo_token,
                                              # the forge serves at its name once its Ingress claimed it
                                              after=(forge.ingress.ingress,)),
            pulumi.ResourceOptions(parent=phase))
        oauth = OAuthClient(app.client_id, app.client_secret, made_by=(app.step,))
    ci = Woodpecker(
        "woodpecker",
        WoodpeckerArgs(
            provider=handover.take(KUBERNETES), kept=handover.take(KEPT_STATE), proxy_class=handover.take(PROXY_CLASS),
            tailnet=tailnet.name, chart_version=woodpecker.chart_version, forge_url=forge_url, oauth=oauth,
            agent_secret=woodpecker.agent_secret, admins=tuple(woodpecker.admins), hostname=woodpecker.hostname,
        ),
        pulumi.ResourceOptions(parent=phase),
    )
    handover.endpoints["woodpecker"] = ci.host_url
