"""Tenants are walls: a token of tenant A reaches nothing of tenant B, whatever id it guesses."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from printfabric.v1 import device_pb2, directory_pb2, spool_pb2, tenant_pb2

from cloud.domain.auth import Auth
from tests.support.fabric import CloudHarness
from tests.test_spool import submit


async def test_guessed_ids_of_another_tenant_answer_not_found(cloud: CloudHarness) -> None:
    a = await cloud.make_tenant("ALPHA")
    b = await cloud.make_tenant("BETA")
    bob = await cloud.add_user(b, "bob")
    job = await submit(bob, b"%!PS\nshowpage\n")
    b_user = (await bob.directory.GetUser(directory_pb2.GetUserRequest(login="bob"))).user
    b_queue = (await b.admin.device.GetPrinter(device_pb2.GetPrinterRequest(name="secure"))).printer
    b_node = (
        await b.admin.device.CreateNode(
            device_pb2.CreateNodeRequest(node=device_pb2.Node(serial_number="N"))
        )
    ).node
    calls = [
        a.admin.spool.GetJob(spool_pb2.GetJobRequest(job_id=job.job_id)),
        a.admin.spool.CancelJob(spool_pb2.CancelJobRequest(job_id=job.job_id)),
        a.admin.directory.GetUser(directory_pb2.GetUserRequest(user_id=b_user.user_id)),
        a.admin.directory.SetPin(directory_pb2.SetPinRequest(user_id=b_user.user_id, pin="123456")),
        a.admin.device.GetPrinter(device_pb2.GetPrinterRequest(printer_id=b_queue.printer_id)),
        a.admin.device.GetNode(device_pb2.GetNodeRequest(node_id=b_node.node_id)),
        a.admin.device.DeleteNode(device_pb2.DeleteNodeRequest(node_id=b_node.node_id)),
        a.admin.tenant.GetTenant(tenant_pb2.GetTenantRequest(tenant_id=b.tenant_id)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await a.admin.spool.ReleaseJobs(
            spool_pb2.ReleaseJobsRequest(job_ids=[job.job_id], printer_id="secure")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await a.admin.spool.ListJobs(spool_pb2.ListJobsRequest(all_users=True))
    assert listed.jobs == []
    users = await a.admin.directory.ListUsers(directory_pb2.ListUsersRequest())
    assert [u.login for u in users.users] == ["admin"]
    # B's job is untouched.
    assert (
        await bob.spool.GetJob(spool_pb2.GetJobRequest(job_id=job.job_id))
    ).job.state == spool_pb2.JOB_STATE_HELD


async def test_users_see_only_their_own_jobs_and_admins_see_all(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    bob = await cloud.add_user(t, "bob")
    job = await submit(alice, b"%!PS\nshowpage\n")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.spool.GetJob(spool_pb2.GetJobRequest(job_id=job.job_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await bob.spool.ListJobs(spool_pb2.ListJobsRequest(all_users=True))).jobs == []
    admin_view = await t.admin.spool.ListJobs(spool_pb2.ListJobsRequest(owner_login="alice"))
    assert [j.job_id for j in admin_view.jobs] == [job.job_id]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.directory.ListUsers(directory_pb2.ListUsersRequest())
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_operator_creates_and_lists_tenants_and_admins_set_retention(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    operator = await cloud.stubs((await Auth(cloud.rt).operator_session()).access_token)
    created = await operator.tenant.CreateTenant(
        tenant_pb2.CreateTenantRequest(
            tenant=tenant_pb2.Tenant(company_code=f"new-{t.company_code}", display_name="New Co")
        )
    )
    assert created.tenant.company_code == f"NEW-{t.company_code}"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await operator.tenant.CreateTenant(
            tenant_pb2.CreateTenantRequest(
                tenant=tenant_pb2.Tenant(company_code=f"NEW-{t.company_code}")
            )
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    codes: list[str] = []
    token = ""
    while True:
        page = await operator.tenant.ListTenants(
            tenant_pb2.ListTenantsRequest(page_size=1, page_token=token)
        )
        codes += [x.company_code for x in page.tenants]
        token = page.next_page_token
        if not token:
            break
    assert {t.company_code, f"NEW-{t.company_code}"} <= set(codes)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await t.admin.tenant.CreateTenant(
            tenant_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(company_code="X1"))
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    updated = await t.admin.tenant.UpdateTenant(
        tenant_pb2.UpdateTenantRequest(
            tenant=tenant_pb2.Tenant(job_retention=Duration(seconds=7200)),
            update_mask=FieldMask(paths=["job_retention"]),
        )
    )
    assert updated.tenant.job_retention.ToTimedelta() == timedelta(hours=2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await t.admin.tenant.ListTenants(tenant_pb2.ListTenantsRequest(page_token="garbage!"))
    assert err.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT)
