"""The storage primitives resumable uploads are built on (multipart parts, small objects,
listing a folder), on the run's backend through the Storage interface."""

from __future__ import annotations

import os
import uuid

import pytest
from flask import Flask

from app.storage import get_storage

MiB = 1024 * 1024


def pending_keys(app: Flask) -> set[str]:
    """What `pending_uploads` lists now."""
    with app.app_context():
        return {obj.key for obj in get_storage().pending_uploads()}


def test_parts_make_the_object_and_completing_twice_is_harmless(app: Flask) -> None:
    """Parts in order (the second stored again, as a retried step does, from other chunks)
    make the exact object; completing again changes nothing; nothing is left pending."""
    with app.app_context():
        storage = get_storage()
        part = storage.min_part_size or 3 * MiB + 5
        data = os.urandom(part + 1000)
        key = f"1/{uuid.uuid4()}/parts.bin"
        parts_id = storage.begin_parts(key, str(uuid.uuid4()))
        first = storage.put_part(key, parts_id, 1, [data[:part]], 0)
        storage.put_part(key, parts_id, 2, [b"not these bytes" * 100], part)
        second = storage.put_part(key, parts_id, 2, [data[part : part + 7], data[part + 7 :]], part)
        assert storage.parts_piece(key, parts_id) in pending_keys(app)
        storage.complete_parts(key, parts_id, [first, second], len(data))
        storage.complete_parts(key, parts_id, [first, second], len(data))
        assert storage.size(key) == len(data)
        assert storage.get(key) == data
        assert storage.parts_piece(key, parts_id) not in pending_keys(app)
        storage.remove(key)


def test_aborting_parts_twice_is_harmless_and_leaves_nothing(app: Flask) -> None:
    """Aborted parts are gone, with no object under the key; aborting again is fine."""
    with app.app_context():
        storage = get_storage()
        key = f"1/{uuid.uuid4()}/aborted.bin"
        parts_id = storage.begin_parts(key, str(uuid.uuid4()))
        storage.put_part(key, parts_id, 1, [os.urandom(storage.min_part_size or 1000)], 0)
        assert storage.parts_piece(key, parts_id) in pending_keys(app)
        storage.abort_parts(key, parts_id)
        storage.abort_parts(key, parts_id)
        assert storage.parts_piece(key, parts_id) not in pending_keys(app)
        assert storage.size(key) is None


def test_small_objects_in_a_work_folder_are_put_got_and_listed(app: Flask) -> None:
    """put and get whole; objects_under lists a folder's objects, `.resumable` included,
    which `objects` never lists; a missing object is FileNotFoundError."""
    with app.app_context():
        storage = get_storage()
        folder = f".resumable/{uuid.uuid4()}"
        assert list(storage.objects_under(folder)) == []
        storage.put(f"{folder}/17", bytearray(b"seventeen bytes!!"))
        storage.put(f"{folder}/20", b"twenty bytes, exact.")
        listed = {obj.key: obj.size for obj in storage.objects_under(folder)}
        assert listed == {f"{folder}/17": 17, f"{folder}/20": 20}
        assert storage.get(f"{folder}/20") == b"twenty bytes, exact."
        assert not any(obj.key.startswith(folder) for obj in storage.objects())
        with pytest.raises(FileNotFoundError):
            storage.get(f"{folder}/99")
        for key in listed:
            storage.remove(key)
        assert list(storage.objects_under(folder)) == []
