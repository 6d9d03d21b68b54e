#!/usr/bin/env python3
"""gearbox-bench server peer: nginx answering GET /health with "ok\\n", on T worker processes.

Writes an nginx configuration (T = 1: one process, master_process off, worker_processes 1;
T > 1: a master and worker_processes T, nginx's own way to use T cores; keep-alive without
a request limit, no access log) into a directory beside this script, prints {"port": N}
and then becomes nginx (exec), so the process gearbox-bench measures is nginx itself (its
CPU time includes the workers it reaps; its peak memory is the master's alone).
gearbox-bench waits until the port accepts connections before it starts the load, and
stops nginx with SIGTERM.

Usage: peer-nginx-http_server [--port P] [--threads T]   (default: a free port chosen here, T = 1)
"""
import argparse
import os
import shutil
import socket
import sys


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not 0 <= args.port <= 65535 or not 1 <= args.threads <= 1024:
        parser.error("--port is 0..65535 and --threads 1..1024")  # exits with 2
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if nginx is None:
        print("peer-nginx-http_server: nginx is not installed (scripts/setup installs nginx-light)", file=sys.stderr)
        return 1
    port = args.port or free_port()
    prefix = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nginx-run", str(port))
    os.makedirs(prefix, exist_ok=True)
    config = os.path.join(prefix, "nginx.conf")
    temp = {name: os.path.join(prefix, name) for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    with open(config, "w") as f:
        f.write(f"""daemon off;
master_process {"off" if args.threads == 1 else "on"};
worker_processes {args.threads};
error_log stderr error;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {temp['body']};
  proxy_temp_path {temp['proxy']};
  fastcgi_temp_path {temp['fastcgi']};
  uwsgi_temp_path {temp['uwsgi']};
  scgi_temp_path {temp['scgi']};
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  server {{
    listen 127.0.0.1:{port};
    location = /health {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
""")
    print(f'{{"port": {port}}}', flush=True)
    os.execv(nginx, [nginx, "-p", prefix, "-c", config, "-e", "stderr"])


if __name__ == "__main__":
    sys.exit(main())
