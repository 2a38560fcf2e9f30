"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json and, readable,
at /api/docs (rendered on the server from this same document: no CDN, no script).
A test checks it against the app's routes and validates sample answers against it."""

from __future__ import annotations

from typing import Any

from vidx import __version__
from vidx.ask import AskRequest

_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_HIT: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "video_id", "start_sec", "end_sec", "score", "clip_url", "thumbnail_url"],
    "properties": {
        "event_id": _ID, "video_id": _ID, "video_path": {"type": "string"},
        "start_sec": {"type": "number", "minimum": 0}, "end_sec": {"type": "number", "minimum": 0},
        "description": {"type": "string"}, "dialogue": {"type": "string"}, "ocr_text": {"type": "string"},
        "people": {"type": "array", "items": {"type": "string"}}, "location": {"type": "string"},
        "action": {"type": "string"}, "objects": {"type": "array", "items": {"type": "string"}},
        "emotion": {"type": "string"}, "source": {"enum": ["scene", "subtitle", "speech", "vlm"]},
        "language": {"type": "string"}, "analyzer": {"type": "string"}, "model": {"type": "string"},
        "score": {"type": "number", "minimum": 0, "maximum": 1, "description": "calibrated relevance"},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "clip_url": {"type": "string"}, "clip_start": {"type": "number"}, "clip_end": {"type": "number"},
        "clip_direct": {"type": "boolean", "description": "true: clip_url is the source itself (seek to "
                        "clip_start); false: a clip transcoded on first request (503 + Retry-After until ready)"},
        "thumbnail_url": {"type": "string"},
        "highlights": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                       "description": "HTML fragments: everything but <em> is escaped"},
        "moment": {"type": "object", "description": "group=moment: the moment's span and how many events it holds",
                   "required": ["start_sec", "end_sec", "events"],
                   "properties": {"start_sec": {"type": "number"}, "end_sec": {"type": "number"},
                                  "events": {"type": "integer", "minimum": 1}}},
        "context": {"type": "array", "description": "group=moment: the other events of the moment (the scene "
                    "around a line, its on-screen text), in time order",
                    "items": {"type": "object", "required": ["event_id", "source", "start_sec", "end_sec", "score"],
                              "properties": {"event_id": _ID, "source": {"type": "string"},
                                             "start_sec": {"type": "number"}, "end_sec": {"type": "number"},
                                             "description": {"type": "string"}, "dialogue": {"type": "string"},
                                             "ocr_text": {"type": "string"}, "score": {"type": "number"},
                                             "highlights": {"type": "object"},
                                             "thumbnail_url": {"type": "string"}}}},
    },
}
_CHAPTER = {"type": "object", "required": ["start_sec", "end_sec", "title"], "properties": {
    "start_sec": {"type": "number"}, "end_sec": {"type": "number"}, "title": {"type": "string"},
    "event_id": _ID}}
_SUMMARY = {"type": "object", "required": ["video_id", "summary", "chapters", "method"], "properties": {
    "video_id": _ID, "summary": {"type": "string"}, "chapters": {"type": "array", "items": _CHAPTER},
    "method": {"enum": ["llm", "extractive"]}, "model": {"type": "string"}, "cached": {"type": "boolean"},
    "note": {"type": "string", "description": "why the model was not used (down, slow, unreadable answer)"}}}
_CITATION = {"type": "object", "required": ["n", "event_id", "video_id", "video_path", "start_sec", "end_sec", "text",
                                            "clip_url"], "properties": {
    "n": {"type": "integer", "minimum": 1, "description": "the [n] in the answer"}, "label": {"type": "string"},
    "event_id": _ID, "video_id": _ID, "video_path": {"type": "string"}, "start_sec": {"type": "number"},
    "end_sec": {"type": "number"}, "text": {"type": "string"}, "source": {"type": "string"},
    "kind": {"enum": ["moment", "chapter", "summary"]}, "clip_url": {"type": "string"},
    "clip_start": {"type": "number"}, "clip_end": {"type": "number"}, "clip_direct": {"type": "boolean"},
    "thumbnail_url": {"type": "string"}}}
_ANSWER = {"type": "object", "required": ["question", "answer", "citations", "method", "evidence_count"], "properties": {
    "question": {"type": "string"}, "answer": {"type": "string", "description": "[n] marks cite citations[n-1]"},
    "citations": {"type": "array", "items": _CITATION}, "method": {"enum": ["llm", "extractive"]},
    "model": {"type": "string"}, "evidence_count": {"type": "integer"},
    "note": {"type": "string", "description": "why the model's answer is not shown (the extractive one is)"}}}
_PERSON: dict[str, Any] = {"type": "object", "required": ["id", "name", "has_voice", "has_face", "moments", "videos",
                                                         "thumbnail_url"], "properties": {
    "id": {"type": "integer"}, "name": {"type": "string", "description": "the given name, or 'Speaker N'"},
    "named": {"type": "boolean"}, "hidden": {"type": "boolean"}, "has_voice": {"type": "boolean"},
    "has_face": {"type": "boolean"},
    "moments": {"type": "integer", "description": "lines spoken plus faces seen"}, "videos": {"type": "integer"},
    "lines": {"type": "integer"}, "faces": {"type": "integer"},
    "speech_seconds": {"type": "number"}, "thumbnail_url": {"type": ["string", "null"]},
    "sample": {"type": ["object", "null"], "description": "a line to hear the voice: clip_url plays it"},
    "url": {"type": "string"}, "page_url": {"type": "string"},
    "moment_list": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}}
_PID = {"name": "pid", "in": "path", "required": True, "schema": {"type": "integer"}}

_EVENT = {**_HIT, "required": ["event_id", "video_id", "start_sec", "end_sec", "clip_url"]}
_RESULT = {"type": "object", "required": ["total", "hits", "min_score"], "properties": {
    "total": {"type": "integer", "description": "matching events, exact up to 10,000 (group=moment: moments)"},
    "group": {"enum": ["none", "moment"]},
    "events_total": {"type": "integer", "description": "group=moment: the matching events"},
    "events_total_relation": {"enum": ["eq", "gte"]},
    "total_relation": {"enum": ["eq", "gte"], "description": "gte: at least `total` (more than 10,000, or an "
                       "unfiltered semantic search on Elasticsearch beyond its 1,000 nearest neighbours)"},
    "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
    "min_score": {"type": "number"}, "below_threshold": {"type": "integer"},
    "filter_total": {"type": "integer", "description": "only when nothing matched and the query has field "
                     "filters (video:, person:, source:, lang:, from/to, added_from/added_to): the events those "
                     "filters allow at all; 0 says that a filter, not the words, left nothing"},
    "page": {"type": "integer"}, "pages": {"type": "integer"},
    "facets": {"type": "object", "description": "counts over every match, by source, language, video, person, "
               "location, object and day added: [[value, count]]",
               "additionalProperties": {"type": "array", "items": {"type": "array"}}}}}
_VIDEO_STATUS = {"type": "object", "required": ["path", "state"], "properties": {
    "video_id": {"type": ["string", "null"]}, "path": {"type": "string"},
    "state": {"enum": ["pending", "processing", "done", "failed"]}, "events": {"type": "integer"},
    "error": {"type": ["string", "null"]}, "note": {"type": ["string", "null"]},
    "message": {"type": ["string", "null"]}, "progress": {"type": "number"}, "warnings": {"type": "integer"},
    "attempts": {"type": "integer"}, "analyzer": {"type": ["string", "null"]},
    "duration_sec": {"type": ["number", "null"]}, "missing_since": {"type": ["number", "null"]},
    "size_bytes": {"type": "integer"},
    "added_at": {"type": ["string", "null"], "format": "date-time", "description": "first seen"},
    "started_at": {"type": ["string", "null"], "format": "date-time", "description": "last analysis started"},
    "finished_at": {"type": ["string", "null"], "format": "date-time", "description": "indexed"},
    "seconds_spent": {"type": ["number", "null"], "description": "how long the last analysis took"}}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    what = {400: "bad parameters", 404: "not found", 413: "too large", 503: "the index cannot be reached"}
    return {str(c): _json({"$ref": "#/components/schemas/Error"}, what[c]) for c in codes}


_SAVED_OUT: dict[str, Any] = {
    "type": "object", "required": ["id", "q", "mode"],
    "properties": {"id": {"type": "string"}, "q": {"type": "string"}, "mode": {"type": "string"},
                   "min_score": {"type": ["number", "null"]}, "created_at": {"type": "number"},
                   "notify_to": {"type": ["string", "null"], "description": "where notifications go (the URL "
                                 "without its secrets)"},
                   "notifications": {"type": "object", "properties": {
                       "sent": {"type": "integer"}, "waiting": {"type": "integer"},
                       "last_sent": {"type": ["number", "null"]}, "last_error": {"type": ["string", "null"]}}}},
}
_LIBRARY_VIDEO: dict[str, Any] = {
    "type": "object",
    "required": ["video_id", "name", "state", "events"],
    "properties": {
        "video_id": {"type": ["string", "null"], "description": "null until the file is hashed"},
        "name": {"type": "string"}, "paths": {"type": "array", "items": {"type": "string"}},
        "state": {"enum": ["done", "processing", "pending", "failed", "missing"]},
        "events": {"type": "integer"}, "duration_sec": {"type": ["number", "null"]},
        "size_bytes": {"type": "integer"},
        "added_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "languages": {"type": "array", "items": {"type": "string"}},
        "error": {"type": ["string", "null"]},
        "page_url": {"type": ["string", "null"]}, "poster_url": {"type": ["string", "null"]},
    },
}


def _param(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


VIDEO_ID = _param("video_id", "path", _ID, "the video's id (first 32 hex digits of its content SHA-256)")
EVENT_ID = _param("event_id", "path", _ID, "the event's id")


def document() -> dict[str, Any]:
    from vidx.saved import SavedSearchIn

    return {
        "openapi": "3.1.0",
        "info": {"title": "vidx", "version": __version__,
                 "description": "Video event search: what happens, what is said and what is shown, by the second. "
                                "With VIDX_UI_API_KEY set every route needs `Authorization: Bearer KEY`."},
        "paths": {
            "/healthz": {"get": {"summary": "Liveness of the web service", "operationId": "healthz",
                                 "responses": {"200": _json({"type": "object"})}}},
            "/api/search": {"get": {
                "summary": "Search events", "operationId": "search",
                "parameters": [
                    _param("q", "query", {"type": "string", "maxLength": 4000},
                           'the query; syntax: "exact phrase", -word, person:, video:, source:, lang:'),
                    _param("mode", "query", {"enum": ["hybrid", "keyword", "semantic"], "default": "hybrid"},
                           "how to match"),
                    _param("size", "query", {"type": "integer", "minimum": 1, "maximum": 100}, "hits to return"),
                    _param("video_id", "query", _ID, "only this video"),
                    _param("min_score", "query", {"type": "number", "minimum": 0, "maximum": 1},
                           "relevance threshold (default VIDX_MIN_SCORE)"),
                    _param("page", "query", {"type": "integer", "minimum": 1}, "page of results"),
                    _param("from", "query", {"type": "string"}, "only events after this time of their video "
                                                                 "(seconds or mm:ss)"),
                    _param("to", "query", {"type": "string"}, "only events before this time of their video"),
                    _param("added_from", "query", {"type": "string", "format": "date"},
                           "only videos indexed on or after this day"),
                    _param("added_to", "query", {"type": "string", "format": "date"},
                           "only videos indexed on or before this day"),
                    _param("group", "query", {"enum": ["none", "moment"], "default": "none"},
                           "moment: hits of one video whose times overlap are one result, headed by the most "
                           "specific event (a line before the scene around it); counted exactly when the best "
                           "600 matching events hold every match, else total_relation is gte"),
                ],
                "responses": {"200": _json(_RESULT), **_errors(400, 503)}}},
            "/api/status": {"get": {"summary": "Every watched file and its state", "operationId": "status",
                                    "responses": {"200": _json({"type": "object", "required": ["videos"],
                                                                "properties": {
                                                                    "videos": {"type": "array",
                                                                               "items": _VIDEO_STATUS},
                                                                    "forgetting_paused": {
                                                                        "type": ["object", "null"]}}}),
                                                  **_errors(503)}}},
            "/api/videos": {"get": {
                "summary": "The library: every video, sorted, filtered and paged", "operationId": "videos",
                "parameters": [
                    _param("sort", "query", {"enum": ["newest", "oldest", "name", "longest", "events"],
                                             "default": "newest"}, "order of the videos"),
                    _param("state", "query", {"enum": ["done", "processing", "pending", "failed", "missing"]},
                           "only videos in this state"),
                    _param("lang", "query", {"type": "string", "maxLength": 16},
                           "only videos with events in this language (en, zh, ...)"),
                    _param("q", "query", {"type": "string", "maxLength": 200},
                           "only videos whose file name contains this"),
                    _param("page", "query", {"type": "integer", "minimum": 1}, "page, from 1"),
                    _param("size", "query", {"type": "integer", "minimum": 1, "maximum": 200},
                           "videos per page (default 200)"),
                    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200},
                           "older name of size"),
                    _param("offset", "query", {"type": "integer", "minimum": 0},
                           "older form of page: the page holding this position")],
                "responses": {"200": _json({"type": "object", "required": ["total", "page", "pages", "videos"],
                                            "properties": {
                    "total": {"type": "integer"}, "page": {"type": "integer"}, "pages": {"type": "integer"},
                    "size": {"type": "integer"}, "sort": {"type": "string"},
                    "videos": {"type": "array", "items": _LIBRARY_VIDEO},
                    "facets": {"type": "object", "description": "state and language counts of the videos "
                                                                "matching q: [[value, count], ...]"}}}),
                    **_errors(400)}}},
            "/api/videos/{video_id}": {"get": {
                "summary": "One video", "operationId": "video", "parameters": [VIDEO_ID],
                "responses": {"200": _json({"type": "object", "required": ["video_id", "name", "state"]}),
                              **_errors(404)}}},
            "/api/videos/{video_id}/events": {"get": {
                "summary": "A video's events in time order", "operationId": "videoEvents", "parameters": [VIDEO_ID],
                "responses": {"200": _json({"type": "object", "required": ["video_id", "events"], "properties": {
                    "video_id": _ID, "total": {"type": "integer"},
                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}}),
                    **_errors(404, 503)}}},
            "/api/videos/{video_id}/transcript": {"get": {
                "summary": "A video's transcript (subtitles or recognised speech)", "operationId": "transcript",
                "parameters": [VIDEO_ID, _param("format", "query", {"enum": ["json", "srt", "vtt"]}, "format")],
                "responses": {"200": {"description": "the transcript", "content": {
                    "application/json": {"schema": {"type": "object", "required": ["video_id", "lines"]}},
                    "application/x-subrip": {"schema": {"type": "string"}},
                    "text/vtt": {"schema": {"type": "string"}}}}, **_errors(400, 404, 503)}}},
            "/api/events/{event_id}": {"get": {
                "summary": "One event", "operationId": "event", "parameters": [EVENT_ID],
                "responses": {"200": _json({"$ref": "#/components/schemas/Event"}), **_errors(404, 503)}}},
            "/api/events/{event_id}/similar": {"get": {
                "summary": "More like this: distinct moments nearest to an event", "operationId": "similar",
                "parameters": [EVENT_ID, _param("size", "query", {"type": "integer", "minimum": 1, "maximum": 100},
                                                "moments to return"),
                               _param("order", "query", {"enum": ["others-first", "score"],
                                                         "default": "others-first"},
                                      "others-first: moments of other videos before those of the event's own")],
                "responses": {"200": _json(_RESULT), **_errors(400, 404, 503)}}},
            "/api/saved-searches": {
                "get": {"summary": "Saved searches with their notifications (sent, waiting, last error)",
                        "operationId": "savedSearches",
                        "responses": {"200": _json({"type": "object", "required": ["saved_searches"], "properties": {
                            "saved_searches": {"type": "array", "items": _SAVED_OUT}}})}},
                "post": {"summary": "Save a search; with notify, each new video's matching moments are sent there",
                         "operationId": "saveSearch",
                         "description": "notify is an Apprise URL (json://, ntfy://, mailto://, tgram://, ...) or "
                                        "an http(s):// webhook that gets a JSON POST. After each video the daemon "
                                        "indexes, every saved search runs on it; the matching moments (video name, "
                                        "time, text, link) make one notification, kept and retried until sent.",
                         "requestBody": {"required": True, "content": {
                             "application/json": {"schema": SavedSearchIn.model_json_schema()}}},
                         "responses": {"201": _json(_SAVED_OUT, "saved"), **_errors(400),
                                       "403": _json({"$ref": "#/components/schemas/Error"}, "missing CSRF token")}}},
            "/api/saved-searches/{search_id}": {"delete": {
                "summary": "Delete a saved search (its unsent notifications go with it)", "operationId": "deleteSaved",
                "parameters": [_param("search_id", "path", {"type": "string"}, "the saved search's id")],
                "responses": {"204": {"description": "deleted"}, **_errors(404)}}},
            "/api/upload": {"post": {
                "summary": "Add a video to the watch folder", "operationId": "upload",
                "description": "Written under a temporary name and renamed when complete. A browser session needs "
                               "its CSRF token (form field csrf_token or header X-CSRF-Token); a request with the "
                               "API key needs none.",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}}}}}},
                "responses": {"201": _json({"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "status_url": {"type": "string"}}}, "stored"),
                    **_errors(400, 413), "415": _json({"$ref": "#/components/schemas/Error"}, "not a video type"),
                    "403": _json({"$ref": "#/components/schemas/Error"}, "missing CSRF token")}}},
            "/api/requeue": {"post": {
                "summary": "Try a failed video again", "operationId": "requeue",
                "description": "The daemon takes the request on its next turn (the UI never writes the ledger).",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "object", "required": ["path"],
                                                    "properties": {"path": {"type": "string"}}}},
                    "application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["path"],
                                                                     "properties": {"path": {"type": "string"}}}}}},
                "responses": {"202": _json({"type": "object"}, "queued"), **_errors(404),
                              "409": _json({"$ref": "#/components/schemas/Error"}, "the video has not failed")}}},
            "/api/ask": {"post": {
                "summary": "Ask the library: an answer with citations of the moments it comes from",
                "operationId": "ask",
                "description": "Moments are found with a hybrid search (the body's filters, the default threshold); "
                               "a language model (VIDX_LLM_URL) answers from them, or, without one or when it "
                               "fails, the best moments are quoted (method extractive, with a note). Citations are "
                               "built from the evidence, never from the model's text. Nothing above the threshold: "
                               "the answer says so and no model is called. stream=true (or Accept: "
                               "application/x-ndjson) sends one JSON object per line: evidence, delta (pieces of "
                               "the answer as written), done (the whole result). A JSON body needs no CSRF token.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": AskRequest.model_json_schema(by_alias=True)}}},
                "responses": {"200": {"description": "the answer", "content": {
                    "application/json": {"schema": _ANSWER},
                    "application/x-ndjson": {"schema": {"type": "string"}}}}, **_errors(400, 503)}}},
            "/api/videos/{video_id}/summary": {"get": {
                "summary": "A video's summary and chapters", "operationId": "summary",
                "description": "Made on first request (map-reduce with the language model when one is set, else the "
                               "video's most central lines and its slide titles), then cached until the video's "
                               "events change.",
                "parameters": [VIDEO_ID],
                "responses": {"200": _json(_SUMMARY), **_errors(404, 503)}}},
            "/api/videos/{video_id}/chapters": {"get": {
                "summary": "A video's chapters: JSON, WebVTT chapters or a '0:00 Title' list", "operationId": "chapters",
                "parameters": [VIDEO_ID, _param("format", "query", {"enum": ["json", "vtt", "txt"]}, "format")],
                "responses": {"200": {"description": "the chapters", "content": {
                    "application/json": {"schema": {"type": "object", "required": ["video_id", "chapters"]}},
                    "text/vtt": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}}},
                    **_errors(400, 404, 503)}}},
            "/api/people": {"get": {
                "summary": "People recognised by voice across the library", "operationId": "people",
                "description": "Each speaker of each video is matched against the voices already known "
                               "(VIDX_PEOPLE_VOICE_MATCH); an unmatched voice is a new person, shown as 'Speaker N' "
                               "until named. Hidden people are listed with hidden=1.",
                "parameters": [_param("hidden", "query", {"enum": ["0", "1"]}, "also list hidden people")],
                "responses": {"200": _json({"type": "object", "required": ["total", "people"], "properties": {
                    "total": {"type": "integer"}, "people": {"type": "array", "items": _PERSON}}})}}},
            "/api/people/{pid}": {
                "get": {"summary": "One person and what they said, across videos", "operationId": "person",
                        "parameters": [_PID],
                        "responses": {"200": _json({**_PERSON, "required": [*_PERSON["required"], "moment_list"]}),
                                      **_errors(404, 503)}},
                "patch": {"summary": "Name, rename or hide a person", "operationId": "update_person",
                          "description": "The daemon writes the new name into the person's lines within seconds; "
                                         "person:\"Name\" then finds them. name null: back to 'Speaker N'. "
                                         "A JSON body needs no CSRF token.",
                          "parameters": [_PID],
                          "requestBody": {"required": True, "content": {"application/json": {"schema": {
                              "type": "object", "additionalProperties": False, "properties": {
                                  "name": {"type": ["string", "null"], "maxLength": 120},
                                  "hidden": {"type": "boolean"}}}}}},
                          "responses": {"200": _json(_PERSON), **_errors(400, 404)}},
                "delete": {"summary": "Delete a person and their voiceprints", "operationId": "delete_person",
                           "parameters": [_PID],
                           "responses": {"200": _json({"type": "object"}), **_errors(404)}}},
            "/api/people/{pid}/thumbnail": {"get": {
                "summary": "The person's face (a JPEG crop of their clearest face)", "operationId": "person_thumbnail",
                "parameters": [_PID],
                "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {"schema": {
                    "type": "string", "format": "binary"}}}}, **_errors(404)}}},
            "/api/people/{pid}/split": {"post": {
                "summary": "Split off the voice and faces a person has in one video (wrongly merged)",
                "operationId": "split_person", "parameters": [_PID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["video_id"], "properties": {"video_id": {"type": "string"}}}}}},
                "responses": {"200": _json(_PERSON), **_errors(400, 404)}}},
            "/api/people/{pid}/merge": {"post": {
                "summary": "Merge a person into another (the same person, found twice)", "operationId": "merge_person",
                "parameters": [_PID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["into"], "properties": {"into": {"type": "integer"}}}}}},
                "responses": {"200": _json(_PERSON), **_errors(400, 404)}}},
            "/api/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                          "responses": {"200": _json({"type": "object"})}}},
        },
        "components": {"schemas": {"Hit": _HIT, "Event": _EVENT, "Error": _ERROR}},
    }
