"""docker-compose's topology without Docker: Debian's nginx with deploy/nginx.conf in front of two real
didchat nodes on PostgreSQL and Redis. Agents connect through it on both Socket.IO transports; a
webhook through it reaches the agent even when nginx sends it to the other node; her reply leaves
once; with one node SIGKILLed, nginx keeps serving through the other; /metrics stays internal; and the
shipped deploy/didchat.yaml runs as docker-compose runs it."""
from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from chat.cli import signed_sms
from chat.config import load_config
from tests.cluster.conftest import NGINX_TEMPLATE, REDIS_URL, REPO, Cluster, Node, get, login, render, start_all
from tests.conftest import ALICE, CUSTOMER, AgentClient, free_port, unavailable, until

NGINX = "/usr/sbin/nginx"
SHIPPED = REPO / "deploy" / "didchat.yaml"
SOURCES = [f"127.0.{k}.1" for k in range(32)]  # ip_hash keys on the first three octets of the client's address


def main_config(prefix: Path, site: Path) -> str:
    """nginx's main file for a run as this user in `prefix`: pid, logs and temp files there; the site included."""
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""  # workers must reach prefix
    temps = "".join(f"    {kind}_temp_path {prefix}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n    log_format routed '$remote_addr $upstream_addr $status \"$request\"';\n"
            f"    access_log {prefix}/access.log routed;\n{temps}    include {site};\n}}\n")


@dataclass
class Balancer:
    """A running nginx on 127.0.0.1:port in front of the cluster's nodes."""

    port: int
    prefix: Path
    proc: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, name: str) -> str:
        path = self.prefix / name
        return path.read_text(errors="replace") if path.exists() else ""

    async def route(self, source: str) -> str:
        """The node address (127.0.0.1:port) nginx sends a client at `source` to, read from its access log."""
        tag = uuid.uuid4().hex
        connector = aiohttp.TCPConnector(local_addr=(source, 0))
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(f"{self.url}/livez?probe={tag}") as answer:
                assert answer.status == 200, await answer.text()
        await until(lambda: tag in self.log("access.log"), 5, "the access log line")
        line = next(line for line in self.log("access.log").splitlines() if tag in line)
        return line.split()[1].split(",")[-1].strip()  # "a, b" when nginx passed to the next node

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start_nginx(prefix: Path, port: int, nodes: list[Node]) -> Balancer:
    """Debian's nginx as this user, with deploy/nginx.conf filled for 127.0.0.1:port and two nodes, answering."""
    if not os.access(NGINX, os.X_OK):
        unavailable(f"Debian's nginx at {NGINX} (apt-get install nginx)")
    prefix.mkdir()
    site = prefix / "didchat.conf"
    site.write_text(render(NGINX_TEMPLATE.read_text(), {"DIDCHAT_LISTEN": f"127.0.0.1:{port}",
                                                        "DIDCHAT_NODE_1": f"127.0.0.1:{nodes[0].port}",
                                                        "DIDCHAT_NODE_2": f"127.0.0.1:{nodes[1].port}"}))
    (prefix / "nginx.conf").write_text(main_config(prefix, site))
    proc = await asyncio.create_subprocess_exec(NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                                "-e", str(prefix / "error.log"), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    balancer = Balancer(port, prefix, proc)
    try:
        async with asyncio.timeout(10):
            while (answer := await get(f"{balancer.url}/livez")) is None or answer[0] != 200:
                assert proc.returncode is None, balancer.log("error.log")
                await asyncio.sleep(0.05)
    except BaseException:
        await balancer.stop()
        raise
    return balancer


@pytest.fixture
async def balanced(make_cluster, tmp_path):
    """Two nodes and nginx on the cluster's public port: (cluster, balancer)."""
    cluster = await make_cluster(nodes=2)
    balancer = await start_nginx(tmp_path / "nginx", cluster.public_port, cluster.nodes)
    try:
        yield cluster, balancer
    finally:
        await balancer.stop()


class PollingAgent(AgentClient):
    """An agent whose browser falls back to Engine.IO long-polling (each request a new HTTP request)."""

    async def connect(self) -> None:
        await self.sio.connect(self.url, namespaces=["/agent"], auth={"token": self.token},
                               transports=["polling"], wait_timeout=5)


async def agent_through(balancer: Balancer, name: str, kind: type[AgentClient] = AgentClient) -> AgentClient:
    status, body = await login(balancer.url, name)
    assert status == 200, body
    client = kind(balancer.url, body["token"])
    await client.connect()
    return client


async def post_from(cluster: Cluster, balancer: Balancer, source: str, text: str) -> tuple[int, str]:
    """A signed Twilio webhook posted to nginx from the client address `source`."""
    url, body, headers = signed_sms(cluster.config, cluster.config.connector_of(ALICE), CUSTOMER, ALICE, text)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0))) as http:
        async with http.post(url, data=body, headers=headers) as answer:
            return answer.status, await answer.text()


async def other_source(balancer: Balancer, than: str) -> str:
    """A client address that nginx sends to another node than the one `than` reaches."""
    home = await balancer.route(than)
    for source in SOURCES:
        if await balancer.route(source) != home:
            return source
    pytest.fail(f"every one of {len(SOURCES)} client addresses hashed to {home}")


async def test_agents_connect_through_nginx_on_websocket_and_polling(balanced):
    cluster, balancer = balanced
    assert (await get(f"{balancer.url}/metrics"))[0] == 403  # scraped from each node, never from outside
    assert (await get(f"{cluster.nodes[0].url}/metrics"))[0] == 200
    on_websocket = await agent_through(balancer, "alice")
    on_polling = await agent_through(balancer, "alice", PollingAgent)
    try:
        assert on_websocket.sio.transport() == "websocket" and on_polling.sio.transport() == "polling"
        for agent in (on_websocket, on_polling):
            assert "numbers" in await agent.call("sync", {})
        assert (await cluster.simulate_sms(url=balancer.url, text="through nginx"))[0] in (200, 204)
        for agent in (on_websocket, on_polling):
            [message] = await agent.wait_messages(1)
            assert message["text"] == "through nginx"
    finally:
        await on_websocket.disconnect()
        await on_polling.disconnect()


async def test_a_webhook_nginx_sends_to_the_other_node_reaches_her_and_her_reply_leaves_once(balanced):
    cluster, balancer = balanced
    source = await other_source(balancer, "127.0.0.1")  # alice's socket is on the node 127.0.0.1 reaches
    alice = await agent_through(balancer, "alice")
    try:
        assert (await post_from(cluster, balancer, source, "via the other node"))[0] in (200, 204)
        try:
            [message] = await alice.wait_messages(1, timeout=2)
        except TimeoutError:
            pytest.fail(f"an SMS nginx sent to the other node ({source}) was not pushed to alice within 2 s")
        assert message["text"] == "via the other node"
        answer = await alice.call("send", {"conversation_id": message["conversation_id"], "text": "hi, Alice here",
                                           "client_id": str(uuid.uuid4())})
        assert answer["ok"], answer
        [request] = await cluster.twilio_api.wait_for_requests(1)
        assert request["Body"] == "hi, Alice here"
        sid = next(iter(cluster.twilio_api.messages))  # Twilio's status callback, through nginx to either node
        assert await cluster.twilio_api.send_status(sid, "delivered") == 200
        await until(lambda: any(s["status"] == "delivered" for s in alice.pushed("status")), 10, "the delivery pushed")
        assert [r["Body"] for r in cluster.twilio_api.requests] == ["hi, Alice here"]  # once, from one node
    finally:
        await alice.disconnect()


async def test_nginx_keeps_serving_through_the_other_node_when_one_is_killed(balanced):
    cluster, balancer = balanced
    home = await balancer.route("127.0.0.1")
    victim = next(node for node in cluster.nodes if home.endswith(f":{node.port}"))
    await victim.kill(signal.SIGKILL)
    survivor = next(node for node in cluster.nodes if node is not victim)
    assert (await get(f"{balancer.url}/readyz"))[0] == 200
    assert await balancer.route("127.0.0.1") == f"127.0.0.1:{survivor.port}"
    alice = await agent_through(balancer, "alice")
    try:
        assert (await cluster.simulate_sms(url=balancer.url, text="after the crash"))[0] in (200, 204)
        [message] = await alice.wait_messages(1)
        answer = await alice.call("send", {"conversation_id": message["conversation_id"], "text": "still here",
                                           "client_id": str(uuid.uuid4())})
        assert answer["ok"], answer
        [request] = await cluster.twilio_api.wait_for_requests(1)
        assert request["Body"] == "still here"
    finally:
        await alice.disconnect()


async def test_the_shipped_config_runs_two_nodes_behind_the_shipped_nginx_config(tmp_path, cluster_database, redis_prefix,
                                                                                  monkeypatch):
    """What `docker compose up` runs, less Docker: deploy/didchat.yaml with the environment compose gives."""
    port, password = free_port(), secrets.token_urlsafe(12)
    environ = {"DIDCHAT_DATABASE_URL": cluster_database, "DIDCHAT_REDIS_URL": REDIS_URL, "DIDCHAT_REDIS_PREFIX": redis_prefix,
               "DIDCHAT_PUBLIC_URL": f"http://127.0.0.1:{port}", "DIDCHAT_SECRET_KEY": secrets.token_urlsafe(32),
               "DIDCHAT_ADMIN_PASSWORD": secrets.token_urlsafe(12), "DIDCHAT_ALICE_PASSWORD": password,
               "DIDCHAT_LOOPBACK_SECRET": secrets.token_urlsafe(24)}
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    config = load_config(SHIPPED)
    nodes = [Node(i, free_port(), SHIPPED, tmp_path / f"node-{i}.log", tmp_path, environ, ("--host", "127.0.0.1"))
             for i in range(2)]
    try:
        await start_all(nodes)
        balancer = await start_nginx(tmp_path / "nginx", port, nodes)
        try:
            status, body = await login(balancer.url, "alice", password)
            assert status == 200, body
            alice = AgentClient(balancer.url, body["token"])
            await alice.connect()
            url, data, headers = signed_sms(config, config.connectors[0], CUSTOMER, "+12125550101", "hello, compose")
            async with aiohttp.ClientSession() as http:
                async with http.post(url, data=data, headers=headers) as answer:
                    assert answer.status in (200, 204), await answer.text()
            [message] = await alice.wait_messages(1)
            assert message["text"] == "hello, compose"
            await alice.disconnect()
        finally:
            await balancer.stop()
    finally:
        await asyncio.gather(*(node.stop() for node in nodes))
