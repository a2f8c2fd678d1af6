"""What Teams, Opsgenie, e-mail, Feishu, DingTalk and WeCom get for each kind of notice (pure): the vendors'
shapes as the receivers check them, signatures computed as documented, limits, escaping and settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
from pydantic import ValidationError

from kubestack.contract.events import IncidentStatus, PredictionStatus, ResultStatus, Risk
from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify.channels import render
from kubestack.pipeline.notify.cn_webhooks import dingtalk_sign, dingtalk_url, feishu_sign, feishu_signer
from kubestack.pipeline.notify.notice import ChannelAlert, ChannelState, Context, channel_notice, notice_for
from tests.notify_events import T0, incident, prediction, proposal, rca, result
from tests.services.vendor_receivers import (
    dingtalk_expected_sign,
    dingtalk_problem,
    feishu_expected_sign,
    feishu_problem,
    opsgenie_problems,
    teams_problem,
)

SETTINGS = NotifySettings.model_validate({
    "console_url": "https://console.example.com/",
    "teams": {"webhook_url": "https://prod-1.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"},
    "opsgenie": {"api_key": "genie-key-123", "region": "eu"},
    "email": {"host": "smtp.example.com", "recipients": ["ops@example.com"]},
    "feishu": {"webhook_url": "https://open.feishu.cn/open-apis/bot/v2/hook/tok", "secret": "fs"},
    "dingtalk": {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=tok", "secret": "SECds"},
    "wecom": {"webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
})


def every_notice() -> list:
    ctx = Context(incident=incident(), rca=rca(), proposal=proposal())
    return [notice_for(incident()), notice_for(incident(), Context(rca=rca())), notice_for(rca(), ctx),
            notice_for(result(ResultStatus.PENDING), ctx), notice_for(result(ResultStatus.VERIFIED), ctx),
            notice_for(incident(status=IncidentStatus.RESOLVED, revision=3)), notice_for(prediction()),
            notice_for(prediction(status=PredictionStatus.WITHDRAWN)),
            channel_notice(ChannelAlert("slack", ChannelState.DOWN, 3, "HTTP 500", T0)),
            channel_notice(ChannelAlert("slack", ChannelState.RESTORED, 3, None, T0))]


@pytest.mark.parametrize("notice", every_notice(), ids=lambda n: f"{n.kind}-{n.status}")
def test_every_notice_is_a_payload_each_vendor_accepts(notice) -> None:
    teams = render(notice, "teams", SETTINGS).payload
    assert teams_problem(teams) is None
    assert all(a["type"] == "Action.OpenUrl" for a in teams["attachments"][0]["content"].get("actions", []))
    assert feishu_problem(render(notice, "feishu", SETTINGS).payload) is None
    assert dingtalk_problem(render(notice, "dingtalk", SETTINGS).payload) is None
    wecom = render(notice, "wecom", SETTINGS).payload
    assert wecom["msgtype"] == "markdown" and 0 < len(wecom["markdown"]["content"].encode()) <= 4096
    mail = render(notice, "email", SETTINGS)
    assert mail.payload["subject"].startswith("[KubeStack] ") and "<html>" in mail.payload["html"]
    opsgenie = render(notice, "opsgenie", SETTINGS)
    if opsgenie is not None:
        url = opsgenie.url.get_secret_value()
        assert url.startswith("https://api.eu.opsgenie.com/v2/alerts")
        if url.endswith("/v2/alerts"):
            assert opsgenie_problems(opsgenie.payload) == {}


def test_opsgenie_maps_notices_to_create_acknowledge_note_and_close() -> None:
    ctx = Context(incident=incident(), proposal=proposal())
    cases = {
        "create": notice_for(incident(title="x" * 200)),
        "notes": notice_for(rca(), ctx),
        "acknowledge": notice_for(result(ResultStatus.APPROVED), ctx),
        "close": notice_for(incident(status=IncidentStatus.RESOLVED)),
    }
    urls = {name: render(n, "opsgenie", SETTINGS) for name, n in cases.items()}
    assert urls["create"].url.get_secret_value() == "https://api.eu.opsgenie.com/v2/alerts"
    assert len(urls["create"].payload["message"]) == 130 and urls["create"].payload["alias"] == "inc-1"
    for action in ("notes", "acknowledge", "close"):
        assert urls[action].url.get_secret_value() == \
            f"https://api.eu.opsgenie.com/v2/alerts/inc-1/{action}?identifierType=alias"
    create = urls["create"]
    assert create.headers(create.body())["Authorization"] == "GenieKey genie-key-123"
    assert "genie-key-123" not in repr(create) and "genie-key-123" not in create.body().decode()


def test_feishu_signature_is_the_documented_hmac_of_timestamp_and_secret() -> None:
    assert feishu_sign("fs", 1599360473) == feishu_expected_sign("fs", "1599360473")
    expected = base64.b64encode(hmac.new(b"1599360473\nfs", digestmod=hashlib.sha256).digest()).decode()
    assert feishu_sign("fs", 1599360473) == expected
    signed = feishu_signer("fs", clock=lambda: 1599360473.9)({"msg_type": "text", "content": {"text": "hi"}})
    assert signed == {"timestamp": "1599360473", "sign": expected, "msg_type": "text", "content": {"text": "hi"}}
    out = render(notice_for(incident()), "feishu", SETTINGS)
    body = json.loads(out.body())
    assert body["sign"] == feishu_expected_sign("fs", body["timestamp"]), "signed anew at each attempt"


def test_dingtalk_signature_goes_in_the_url_urlencoded() -> None:
    url = dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=tok", "SECds", now=1577000000.123)
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == ["tok"] and query["timestamp"] == ["1577000000123"]
    assert query["sign"] == [dingtalk_expected_sign("SECds", "1577000000123")]
    assert unquote_plus(dingtalk_sign("SECds", 1577000000123)) == dingtalk_expected_sign("SECds", "1577000000123")
    out = render(notice_for(incident()), "dingtalk", SETTINGS)
    assert out.url.get_secret_value() == "https://oapi.dingtalk.com/robot/send?access_token=tok"
    signed = parse_qs(urlsplit(out.address()).query)  # signed anew at each attempt
    assert signed["sign"] == [dingtalk_expected_sign("SECds", signed["timestamp"][0])]
    assert dingtalk_url("https://x/robot/send?access_token=t", None) == "https://x/robot/send?access_token=t"


def test_chat_markup_from_events_cannot_mention_everyone() -> None:
    noisy = notice_for(incident(summary="<at id=all></at> <@all> urgent"))
    lark = json.dumps(render(noisy, "feishu", SETTINGS).payload)
    assert "<at" not in lark and "&lt;at id=all&gt;" in lark
    assert "<@" not in render(noisy, "wecom", SETTINGS).payload["markdown"]["content"]
    assert "<@" not in render(noisy, "dingtalk", SETTINGS).payload["markdown"]["text"]
    html = render(noisy, "email", SETTINGS).payload["html"]
    assert "<at id" not in html and "&lt;at id=all&gt;" in html


def test_a_forbidden_proposal_offers_no_decision_links() -> None:
    ctx = Context(incident=incident(), proposal=proposal(risk=Risk.FORBIDDEN))
    notice = notice_for(result(ResultStatus.PENDING), ctx)
    for channel in ("teams", "feishu", "dingtalk", "wecom", "email"):
        assert "decision=approve" not in json.dumps(render(notice, channel, SETTINGS).payload), channel
    allowed = notice_for(result(ResultStatus.PENDING), Context(incident=incident(), proposal=proposal()))
    assert "decision=approve" in json.dumps(render(allowed, "teams", SETTINGS).payload)


def test_settings_of_the_new_channels() -> None:
    assert SETTINGS.channel_names() == ["teams", "opsgenie", "email", "feishu", "dingtalk", "wecom"]
    assert SETTINGS.rate_limit("wecom").per_minute == 15 and SETTINGS.rate_limit("feishu").per_minute == 60
    assert NotifySettings.model_validate({"opsgenie": {"api_key": "k"}}).opsgenie.base_url == \
        "https://api.opsgenie.com"
    with pytest.raises(ValidationError, match="email.recipients must name at least one address"):
        NotifySettings.model_validate({"email": {"host": "smtp.example.com"}})
    with pytest.raises(ValidationError, match="go together"):
        NotifySettings.model_validate({"email": {"host": "h", "recipients": ["a@b.c"], "username": "u"}})
    with pytest.raises(ValidationError, match="names channel 'opsgenie', which is not configured"):
        NotifySettings.model_validate({"teams": SETTINGS.teams.model_dump(mode="python"),
                                       "routes": [{"channels": ["opsgenie"]}]})
    with pytest.raises(ValidationError, match="region"):
        NotifySettings.model_validate({"opsgenie": {"api_key": "k", "region": "apac"}})
    routed = SETTINGS.model_copy(update={"routes": []})
    assert routed.channel_names()[-1] == "wecom"
