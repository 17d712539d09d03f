"""One libtorrent session with one torrent, for the btslave test lab.

Usage: python3 libtorrent_session.py CONFIG.json

CONFIG holds addr, port, torrent, save_path, upload_limit, download_limit
(bytes/s, 0 = none), seed_mode, share_mode, share_mode_target and peers
(["ip:port", ...] to connect to at start).

Stdout carries one JSON object per line, each with a "type":
  ready          listening, torrent added
  status         once a second: torrent totals and per-peer figures
  ext_handshake  a peer_log line with an EXTENDED_HANDSHAKE (either way)
  done           the torrent is finished (once)
  error          a fatal or torrent error (then the script may exit)
Stdin takes commands, one per line: "connect IP:PORT", "quit". Peers from
the config or "connect" are dialled again every 5 s while the torrent is
not finished and not connected to them.
Other alerts go to stderr as text.
"""

import faulthandler
import json
import queue
import sys
import threading
import time

import libtorrent as lt

out_lock = threading.Lock()


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def log(msg):
    sys.stderr.write("%.3f %s\n" % (time.time(), msg))
    sys.stderr.flush()


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    # A crash in the bindings prints the Python stack to stderr.
    faulthandler.enable()
    with open(sys.argv[1]) as f:
        cfg = json.load(f)

    cat = lt.alert.category_t
    mask = (cat.error_notification | cat.status_notification | cat.tracker_notification
            | cat.connect_notification | cat.peer_notification | cat.storage_notification
            | cat.peer_log_notification)
    settings = {
        "listen_interfaces": "%s:%d" % (cfg["addr"], cfg["port"]),
        # Outgoing connections (peers and trackers) leave from our own
        # address, so that the tracker lists the address we listen on.
        "outgoing_interfaces": cfg["addr"],
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "enable_ip_notifier": False,
        "dht_bootstrap_nodes": "",
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": cfg["upload_limit"],
        "download_rate_limit": cfg["download_limit"],
        "share_mode_target": cfg.get("share_mode_target") or 3,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "ssrf_mitigation": False,
        "alert_mask": mask,
        "alert_queue_size": 10000,
        "user_agent": "btslave-lab libtorrent/" + lt.__version__,
    }
    # flags 0: no default plugins. ut_metadata and smart_ban only: no PEX.
    ses = lt.session(settings, 0)
    ses.add_extension("ut_metadata")
    ses.add_extension("smart_ban")

    # libtorrent exempts local peers (loopback included) from rate limits
    # through its local peer class; put every address in the global class
    # only, so that the limits apply on loopback.
    pcf = lt.ip_filter()
    glob = 1 << lt.session.global_peer_class_id
    pcf.add_rule("0.0.0.0", "255.255.255.255", glob)
    pcf.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", glob)
    ses.set_peer_class_filter(pcf)

    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(cfg["torrent"])
    atp.save_path = cfg["save_path"]
    flags = atp.flags & ~lt.torrent_flags.paused & ~lt.torrent_flags.auto_managed
    if cfg.get("seed_mode"):
        flags |= lt.torrent_flags.seed_mode
    if cfg.get("share_mode"):
        flags |= lt.torrent_flags.share_mode
    atp.flags = flags
    h = ses.add_torrent(atp)

    # Peers we were told to dial, and when we last did. Until the torrent
    # is finished, one we are not connected to is dialled again every few
    # seconds (there may be no tracker to bring it back).
    wanted = {}

    def dial(peer):
        h.connect_peer(split_hostport(peer))
        wanted[peer] = time.time()

    for peer in cfg.get("peers") or []:
        dial(peer)

    # Every libtorrent call happens on this (the main) thread: the stdin
    # reader only queues commands. Calls from two threads crashed the
    # bindings (a rare segfault in python3-libtorrent 2.0.8).
    commands = queue.Queue()

    def read_commands():
        for line in sys.stdin:
            commands.put(line)
        commands.put("quit")

    threading.Thread(target=read_commands, daemon=True).start()

    ready = False
    done = False
    next_status = 0.0
    stop = False
    while not stop:
        while not commands.empty():
            line = commands.get()
            words = line.split()
            if not words:
                continue
            if words[0] == "connect" and len(words) == 2:
                try:
                    dial(words[1])
                    log("connect_peer " + words[1])
                except Exception as e:  # noqa: BLE001 - report and go on
                    emit({"type": "error", "message": "connect %s: %s" % (words[1], e)})
            elif words[0] == "quit":
                stop = True
            else:
                emit({"type": "error", "message": "unknown command %r" % line.strip()})
        # Not ses.wait_for_alert: the bindings wrap the alert it returns, in
        # the queue libtorrent's network thread is still appending to; when
        # that queue grows the alert moves and the wrapping reads freed
        # memory (an intermittent SIGSEGV in python3-libtorrent 2.0.8,
        # arvidn/libtorrent#5018). Sleeping and popping needs no pointer
        # into the pending queue.
        time.sleep(0.1)
        for a in ses.pop_alerts():
            if isinstance(a, lt.peer_log_alert):
                msg = a.message()
                if "EXTENDED_HANDSHAKE" in msg:
                    emit({"type": "ext_handshake", "peer": "%s:%d" % a.ip, "message": msg})
                continue
            if isinstance(a, lt.listen_succeeded_alert):
                log(a.message())
                if a.socket_type == lt.socket_type_t.tcp and not ready:
                    ready = True
                    emit({"type": "ready", "addr": "%s:%d" % (a.address, a.port)})
                continue
            if isinstance(a, lt.listen_failed_alert):
                emit({"type": "error", "message": a.message()})
                sys.exit(1)
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                emit({"type": "error", "message": a.message()})
            log(a.message())

        now = time.time()
        if now < next_status:
            continue
        next_status = now + 1.0
        st = h.status()
        peers = []
        for p in h.get_peer_info():
            client = p.client
            if isinstance(client, bytes):
                client = client.decode("utf-8", "replace")
            peers.append({
                "addr": "%s:%d" % p.ip,
                "client": client,
                "upload_only": bool(p.flags & lt.peer_info.upload_only),
                "seed": bool(p.flags & lt.peer_info.seed),
                "outgoing": bool(p.flags & lt.peer_info.local_connection),
                "progress": p.progress,
                "total_upload": p.total_upload,
                "total_download": p.total_download,
                "up_speed": p.up_speed,
                "down_speed": p.down_speed,
            })
        emit({
            "type": "status",
            "time": now,
            "progress": st.progress,
            "state": str(st.state),
            "total_upload": st.total_upload,
            "total_download": st.total_download,
            "total_payload_upload": st.total_payload_upload,
            "total_payload_download": st.total_payload_download,
            "all_time_upload": st.all_time_upload,
            "all_time_download": st.all_time_download,
            "upload_rate": st.upload_payload_rate,
            "download_rate": st.download_payload_rate,
            "num_peers": st.num_peers,
            "is_seeding": st.is_seeding,
            "is_finished": st.is_finished,
            "peers": peers,
        })
        if not st.is_finished:
            connected = {p["addr"] for p in peers}
            again = [w for w, at in wanted.items() if w not in connected and now - at > 5]
            for w in again:
                log("dialling %s again" % w)
                dial(w)
        if st.is_finished and not done and not cfg.get("share_mode"):
            done = True
            emit({"type": "done"})


if __name__ == "__main__":
    main()
