"""The access check wired into Flask, and the login and logout routes (a blueprint).

`install(app, authoriser)` makes `Authoriser.check` run before every route; the stream's
hand-over in edgeface.server asks the same authoriser and leaves whatever it refuses to Flask, so
the refusals below are the only ones.

/login    GET: the form; POST (user, password): a session cookie and a redirect to the page,
          401 with the form again, or 429 + Retry-After past the failed-login limit
/logout   POST: the session is revoked and its cookie cleared; a redirect to /login
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, redirect, render_template, request, url_for

from edgeface.auth import SESSION_COOKIE, Authoriser

log = logging.getLogger(__name__)
MAX_FIELD = 1024  # characters of a form field that are looked at
REALM = 'Bearer realm="edgeface"'


def install(app: Flask, authoriser: Authoriser) -> None:
    """Check every request of `app` with `authoriser` and add the login/logout routes."""

    @app.before_request
    def check_access() -> Any:
        decision = authoriser.check(request.environ)
        if decision.allowed:
            g.user = decision.user
            g.who = decision.who or "anyone"  # WEB_AUTH=off: nobody is asked
            g.role = decision.role
            return None
        if decision.forbidden:
            response = jsonify(error=decision.forbidden)
            response.status_code = 403
            response.headers["Cache-Control"] = "no-store"
            return response
        if decision.redirect:
            return redirect(url_for("login.page"))
        if request.path.startswith("/api/"):
            response = jsonify(error="authentication required")
        else:
            response = Response("authentication required\n", mimetype="text/plain")
        response.status_code = 401
        response.headers["Cache-Control"] = "no-store"
        if decision.bearer:
            response.headers["WWW-Authenticate"] = REALM
        return response

    @app.context_processor
    def who() -> dict[str, Any]:
        return {"auth_enabled": authoriser.enabled, "user": g.get("user"), "role": g.get("role")}

    app.register_blueprint(_blueprint(authoriser))


def _blueprint(authoriser: Authoriser) -> Blueprint:
    routes = Blueprint("login", __name__)

    @routes.get("/login")
    def page() -> Any:
        if not authoriser.enabled or authoriser.session_of(request.environ) is not None:
            return redirect(url_for("index"))
        return render_template("login.html", message=None, name="")

    @routes.post("/login")
    def login() -> Any:
        if not authoriser.enabled:
            return redirect(url_for("index"), 303)
        name = request.form.get("user", "")[:MAX_FIELD]
        password = request.form.get("password", "")[:MAX_FIELD]
        address = authoriser.client_address(request.environ)
        wait = authoriser.limiter.retry_after(address, name)
        if wait:
            message = f"Too many failed logins: try again in {wait} s."
            page = render_template("login.html", message=message, name=name)
            return page, 429, {"Retry-After": str(wait), "Cache-Control": "no-store"}
        if not authoriser.login(name, password):
            authoriser.limiter.failed(address, name if authoriser.known_user(name) else None)
            log.warning("failed login as %r from %s", name, address)
            page = render_template("login.html", message="Wrong user name or password.", name=name)
            return page, 401, {"Cache-Control": "no-store"}
        authoriser.limiter.succeeded(address, name)
        log.info("%s logged in from %s", name, address)
        response = redirect(url_for("index"), 303)
        response.set_cookie(
            SESSION_COOKIE,
            authoriser.new_session(name),
            max_age=int(authoriser.session_seconds),
            path="/",
            secure=authoriser.secure_cookie(request.environ),
            httponly=True,
            samesite="Lax",
        )
        return response

    @routes.post("/logout")
    def logout() -> Any:
        session = authoriser.session_of(request.environ)
        if session is not None:
            authoriser.end_session(session)
            log.info("%s logged out", session.user)
        response = redirect(url_for("login.page"), 303)
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            secure=authoriser.secure_cookie(request.environ),
            httponly=True,
            samesite="Lax",
        )
        return response

    return routes
