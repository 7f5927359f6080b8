#!/usr/bin/python3
"""The notes app of the ansible-lab example: a front page, a list of notes, a way to add one."""
import http.server
import pathlib
import re
import urllib.parse

APP = pathlib.Path(__file__).resolve().parent
NOTES = pathlib.Path("/var/lib/ansible-lab/notes.txt")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            self.reply(200, "text/html; charset=utf-8", (APP / "index.html").read_bytes())
        elif url.path == "/notes":
            self.reply(200, "text/plain; charset=utf-8", NOTES.read_bytes())
        elif url.path == "/add":
            note = re.sub(r"[^A-Za-z0-9 _.-]", "", urllib.parse.unquote_plus(url.query))[:200]
            with NOTES.open("a") as f:
                f.write(note + "\n")
            self.reply(200, "text/plain; charset=utf-8", b"added\n")
        else:
            self.reply(404, "text/plain; charset=utf-8", b"not found\n")

    def reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("", 80), Handler).serve_forever()
