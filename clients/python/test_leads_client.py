"""A Python client of the running suite, generated from proto/ with grpcio-tools.

clients/check.sh generates the client into a temporary directory, puts it on
PYTHONPATH, type-checks this file with mypy against the generated stubs,
starts the suite and runs it with pytest. The gateway's address is
CRM_ADDR (host:port) and a token for a sales user is CRM_TOKEN.

What a client team needs is all here: the bearer token, `request_id` for
safe retries, etags, and the google.rpc error details of a refusal.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from crm.leads.v1 import lead_pb2, lead_service_pb2, lead_service_pb2_grpc


def error_status(err: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status a server sends in `grpc-status-details-bin`."""
    assert isinstance(err, grpc.Call)
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no grpc-status-details-bin in {err!r}")


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


def field_violations(status: status_pb2.Status) -> list[str]:
    """The fields a BadRequest detail names (`lead.email`)."""
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


@pytest.fixture(scope="module")
def leads() -> Iterator[lead_service_pb2_grpc.LeadServiceStub]:
    # The token goes on every call as `authorization: Bearer <token>`. Call
    # credentials need a secure channel: local credentials (plaintext, only
    # to a loopback address) here; grpc.ssl_channel_credentials() in
    # production.
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
        grpc.access_token_call_credentials(os.environ["CRM_TOKEN"]),
    )
    with grpc.secure_channel(os.environ["CRM_ADDR"], credentials) as channel:
        yield lead_service_pb2_grpc.LeadServiceStub(channel)


def a_lead() -> lead_pb2.Lead:
    # Unique keys: a second lead with the same phone, email or company and
    # contact would be a duplicate (ALREADY_EXISTS).
    tag = uuid.uuid4().hex[:12]
    return lead_pb2.Lead(
        company=f"ACME Robotics {tag}",
        contact_name="Li Lei",
        email=f"li.lei.{tag}@acme.example",
        source_channel="referral",
    )


def test_create_then_get(leads: lead_service_pb2_grpc.LeadServiceStub) -> None:
    created = leads.CreateLead(
        lead_service_pb2.CreateLeadRequest(request_id=str(uuid.uuid4()), lead=a_lead()),
        timeout=10,
    ).lead
    assert created.id and created.etag and created.creator == "amy"

    got = leads.GetLead(lead_service_pb2.GetLeadRequest(id=created.id), timeout=10).lead
    assert (got.id, got.company, got.email) == (created.id, created.company, created.email)


def test_a_bad_field_is_named(leads: lead_service_pb2_grpc.LeadServiceStub) -> None:
    lead = a_lead()
    lead.email = "not-an-email"
    with pytest.raises(grpc.RpcError) as raised:
        leads.CreateLead(lead_service_pb2.CreateLeadRequest(lead=lead), timeout=10)
    err = raised.value
    assert isinstance(err, grpc.Call)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = error_status(err)
    assert field_violations(status) == ["lead.email"]
    info = error_info(status)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "crm.leads")


def test_a_retried_create_creates_once(leads: lead_service_pb2_grpc.LeadServiceStub) -> None:
    request = lead_service_pb2.CreateLeadRequest(request_id=str(uuid.uuid4()), lead=a_lead())
    first = leads.CreateLead(request, timeout=10).lead
    # The same request again (as after a timeout): the first result, no new lead.
    again = leads.CreateLead(request, timeout=10).lead
    assert again.id == first.id

    mine = leads.ListLeads(
        lead_service_pb2.ListLeadsRequest(scope=lead_service_pb2.LEAD_SCOPE_MINE, page_size=500),
        timeout=10,
    ).leads
    assert [lead.id for lead in mine if lead.company == request.lead.company] == [first.id]


def test_a_stale_etag_is_aborted(leads: lead_service_pb2_grpc.LeadServiceStub) -> None:
    created = leads.CreateLead(
        lead_service_pb2.CreateLeadRequest(request_id=str(uuid.uuid4()), lead=a_lead()),
        timeout=10,
    ).lead
    change = lead_pb2.Lead(id=created.id, etag=created.etag, notes="called back")
    mask = field_mask_pb2.FieldMask(paths=["notes"])
    updated = leads.UpdateLead(
        lead_service_pb2.UpdateLeadRequest(lead=change, update_mask=mask), timeout=10
    ).lead
    assert updated.notes == "called back" and updated.etag != created.etag

    # The same change with the etag it was based on is now stale.
    with pytest.raises(grpc.RpcError) as raised:
        leads.UpdateLead(
            lead_service_pb2.UpdateLeadRequest(lead=change, update_mask=mask), timeout=10
        )
    err = raised.value
    assert isinstance(err, grpc.Call)
    assert err.code() == grpc.StatusCode.ABORTED
    assert error_info(error_status(err)).reason == "ETAG_MISMATCH"
