"""HTTP routes of the people page (a blueprint): who the model knows, and an operator's changes.

/people                         page: each person, their photos, what is pending, forget buttons
GET    /api/people              JSON: each person (photos, in the model in service, pending), the
                                model version and the command that applies what is pending
POST   /api/people/<name>/photos   a photo of <name> (the body, or one file of a form): stored as a
                                training photo once it shows exactly one face; 201
DELETE /api/people/<name>       every stored photo of <name> removed, <name> kept out of the
                                next model; 200
POST   /api/tracks/<track>/enroll  {"name": ...}: the face of that track, cut from the frame the
                                app holds, stored as a training photo of that name; 201

The writes are an operator's (edgeface.auth: 403 for a viewer). Refusals answer JSON
`{"error": why}`: 400 bad name or picture, 404 no such track or person, 409 the same photo stored
already, 413 too large, 422 no face or several, 503 no store or no worker.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, g, render_template, request

from edgeface.config import AppConfig
from edgeface.enrolment import face_crop, training_photo
from edgeface.people import PeopleError, PeopleStore, person_name
from edgeface.picture import PictureError, decode_picture, scaled_down
from edgeface.pipeline import Pipeline
from edgeface.s3 import S3Error
from edgeface.uploads import uploaded_picture

log = logging.getLogger(__name__)
NO_STORE = "no people store here: the app has no PEOPLE_S3_URL (the site's model store)"

Answer = tuple[dict[str, Any], int]


def people_routes(pipeline: Pipeline, store: PeopleStore | None, config: AppConfig) -> Blueprint:
    routes = Blueprint("people", __name__)

    def listing() -> dict[str, Any]:
        model = pipeline.model
        body: dict[str, Any] = {
            "model": {"version": model.version, "people": list(model.people)},
            "retrain_command": config.people_retrain_command,
            "store": None,
        }
        if store is None:
            body["store"] = {"error": NO_STORE}
            body["people"] = [{"name": name, "in_model": True} for name in model.people]
            return body
        people = store.people(model.people, model.trained)
        body["people"] = [person.as_json() for person in people]
        body["pending"] = any(person.has_pending for person in people)
        return body

    def answer(action: Any) -> Answer:
        """Run `action` (store given), turning refusals into their JSON answers."""
        if store is None:
            return {"error": NO_STORE}, 503
        try:
            result: Answer = action(store)
        except (PeopleError, PictureError) as error:
            return {"error": str(error)}, error.status
        except S3Error as error:
            log.warning("people store: %s", error)
            return {"error": f"the people store failed: {error}"}, 503
        return result

    def recognise(image: Any) -> Any:
        if not pipeline.pool.serving:
            raise PeopleError(503, "the inference workers are starting: try again in a few seconds")
        return pipeline.recognise(image)

    @routes.get("/people")
    def page() -> str:
        return render_template("people.html")

    @routes.get("/api/people")
    def people() -> Answer:
        try:
            return listing(), 200
        except S3Error as error:
            log.warning("people store: %s", error)
            return {"error": f"the people store failed: {error}"}, 503

    @routes.post("/api/people/<name>/photos")
    def add_photo(name: str) -> Answer:
        def add(chosen: PeopleStore) -> Answer:
            person = person_name(name)
            image = scaled_down(decode_picture(uploaded_picture()))
            sha = chosen.add_photo(person, training_photo(image, recognise), g.who, "uploaded")
            return {"name": person, "photo": sha}, 201

        return answer(add)

    @routes.delete("/api/people/<name>")
    def forget(name: str) -> Answer:
        def remove(chosen: PeopleStore) -> Answer:
            person = person_name(name)
            known = pipeline.model.people
            removed = chosen.forget(person, g.who, known)
            return {"name": person, "photos_removed": removed, "in_model": person in known}, 200

        return answer(remove)

    @routes.post("/api/tracks/<int:track>/enroll")
    def enroll(track: int) -> Answer:
        def enrol(chosen: PeopleStore) -> Answer:
            body = request.get_json(silent=True)
            person = person_name(body.get("name") if isinstance(body, dict) else None)
            held = pipeline.tracked_face(track)
            if held is None:
                raise PeopleError(404, f"no face with track {track} is on screen now")
            photo = training_photo(face_crop(held.image, held.face.box), recognise)
            sha = chosen.add_photo(
                person, photo, g.who, "enrolled", track=track, camera=held.camera, was=held.face.match.name
            )
            return {"name": person, "photo": sha, "track": track, "camera": held.camera}, 201

        return answer(enrol)

    return routes
