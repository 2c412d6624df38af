"""The env contract: defaults that work, and bad values refused with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeface.config import DEFAULT_STREAM_URL, ConfigError, load_config


def test_no_settings_gives_the_documented_defaults() -> None:
    config = load_config({})

    assert config.model_filename == Path("model.data")
    assert config.video_stream_url == DEFAULT_STREAM_URL == "rtmp://nginx-rtmp:1935/live/test"
    assert config.video_device_id is None
    assert (config.frame_width, config.frame_height) == (1280, 720)
    assert (config.face_loc_model, config.face_loc_ntu) == ("hog", 1)
    assert (
        config.face_ratio == 1.0
    )  # scale 1 x 2^1: faces down to 40 px (the seed's 0.25 finds none under 140)
    assert config.face_min_size == 20
    assert config.face_unknown_distance is None  # unset: the tolerance + 0.1
    assert config.video_processing_fps == 15.0  # departs from the seed's 1: >= 10 named updates/s
    assert config.face_tolerance is None  # unset: the tolerance recorded in the model
    assert config.log_level == "INFO"
    assert config.face_track_seconds == 2.0  # a named face is encoded again every 2 s
    assert config.inference_workers == 2  # one follows the faces, one scans the whole frame


def test_the_seed_names_are_read() -> None:
    config = load_config(
        {
            "MODEL_FILENAME": "/models/model.data",
            "VIDEO_STREAM_URL": "rtmp://10.0.0.2:31935/live/test",
            "VIDEO_DEVICE_ID": "0",
            "FACE_RATIO": "1",
            "FACE_LOC_MODEL": "CNN",
            "FACE_LOC_NTU": "2",
            "VIDEO_PROCESSING_FPS": "30",
            "WEB_LOGLEVEL": "debug",
            "MODEL_TRAINING_YAML": "metadata.yaml",
        }
    )

    assert config.model_filename == Path("/models/model.data")
    assert config.video_stream_url == "rtmp://10.0.0.2:31935/live/test"
    assert config.video_device_id == 0
    assert (config.face_ratio, config.face_loc_model, config.face_loc_ntu) == (1.0, "cnn", 2)
    assert config.video_processing_fps == 30.0
    assert config.log_level == "DEBUG"
    assert config.model_training_yaml == Path("metadata.yaml")


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("FACE_RATIO", "0", "(0, 1]"),
        ("FACE_RATIO", "quarter", "(0, 1]"),
        ("FACE_RATIO", "1.5", "(0, 1]"),
        ("FACE_LOC_MODEL", "yolo", "hog or cnn"),
        ("FACE_LOC_NTU", "-1", "0..3"),
        ("FACE_LOC_NTU", "1.5", "0..3"),
        ("VIDEO_PROCESSING_FPS", "0", "(0, 60]"),
        ("VIDEO_DEVICE_ID", "cam0", "0..63"),
        ("CAP_PROP_FRAME_WIDTH", "wide", "16..7680"),
        ("WEB_LOGLEVEL", "LOUD", "CRITICAL, ERROR, WARNING, INFO, DEBUG"),
        ("FACE_TOLERANCE", "nan", "(0, 1.5]"),
        ("WEB_PORT", "70000", "1..65535"),
        ("FACE_TRACK_SECONDS", "-1", "[0, 10]"),
        ("FACE_TRACK_SECONDS", "always", "[0, 10]"),
        ("INFERENCE_WORKERS", "0", "1..8"),
        ("INFERENCE_WORKERS", "two", "1..8"),
        ("FACE_MIN_SIZE", "8", "16..1000"),
        ("FACE_MIN_SIZE", "big", "16..1000"),
        ("FACE_UNKNOWN_DISTANCE", "0", "(0, 1.5]"),
        ("WEB_AUTH", "maybe", "on or off"),
        ("WEB_TRUSTED_PROXY", "proxy.local", "the IP address of the TLS terminator in front, or *"),
        ("WEB_COOKIE_SECURE", "always", "on or off"),
        ("FACE_BLUR_UNKNOWN", "blur", "on or off"),
        ("METRICS_PER_PERSON", "names", "on or off"),
        ("WEB_SESSION_HOURS", "0", "hours in (0, 720]"),
        ("MODEL_SHA256", "abc", "64 hexadecimal digits"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_accepts(variable: str, value: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({variable: value})

    message = str(raised.value)
    assert message.startswith(f"{variable}=")
    assert repr(value) in message
    assert accepted in message


def test_tracking_and_workers_are_read() -> None:
    config = load_config({"FACE_TRACK_SECONDS": "0", "INFERENCE_WORKERS": "1"})

    assert (config.face_track_seconds, config.inference_workers) == (0.0, 1)


def test_naming_thresholds_and_minimum_size_are_read() -> None:
    config = load_config({"FACE_MIN_SIZE": "60", "FACE_UNKNOWN_DISTANCE": "0.75"})

    assert (config.face_min_size, config.face_unknown_distance) == (60, 0.75)


def test_empty_values_mean_the_default() -> None:
    assert load_config({"FACE_RATIO": "", "VIDEO_DEVICE_ID": " "}) == load_config({})


def test_one_camera_is_named_after_its_stream_key() -> None:
    (camera,) = load_config({"VIDEO_STREAM_URL": "rtmp://10.0.0.2:31935/live/door"}).cameras

    assert (camera.name, camera.url, camera.device) == ("door", "rtmp://10.0.0.2:31935/live/door", None)
    assert [c.name for c in load_config({}).cameras] == ["test"]  # rtmp://nginx-rtmp:1935/live/test
    assert [c.name for c in load_config({"VIDEO_STREAM_URL": "/videos/Hall 1.mp4"}).cameras] == ["camera"]
    assert [c.name for c in load_config({"VIDEO_DEVICE_ID": "0"}).cameras] == ["camera"]


def test_several_cameras_are_read_in_order_and_win_over_the_one() -> None:
    config = load_config(
        {
            "VIDEO_STREAM_URL": "rtmp://nginx-rtmp:1935/live/test",
            "VIDEO_STREAM_URLS": "door=rtmp://nginx-rtmp:1935/live/door?key=a=b, hall=/videos/hall.mp4",
        }
    )

    assert [(c.name, c.url) for c in config.cameras] == [
        ("door", "rtmp://nginx-rtmp:1935/live/door?key=a=b"),
        ("hall", "/videos/hall.mp4"),
    ]


@pytest.mark.parametrize(
    ("value", "entry"),
    [
        ("door", "'door' is not name=url"),
        ("Door=rtmp://x/live/door", "'Door=rtmp://x/live/door': the name must be"),
        ("door=rtmp://x/live/a,door=rtmp://x/live/b", "the name 'door' is taken twice"),
        ("door=rtmp://x/live/a,,hall=rtmp://x/live/b", "'' is not name=url"),
        ("door=", "'door=' is not name=url"),
    ],
)
def test_a_bad_camera_entry_is_refused_naming_the_variable_and_the_entry(value: str, entry: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"VIDEO_STREAM_URLS": value})

    message = str(raised.value)
    assert message.startswith("VIDEO_STREAM_URLS: ") and entry in message
    assert "name=url,name=url" in message


def test_cameras_are_read_from_a_file_one_a_line_or_separated_by_commas(tmp_path: Path) -> None:
    urls = tmp_path / "urls"
    urls.write_text(
        "door=rtsp://admin:s3cret@10.0.0.5/stream\n\nhall=rtsp://cam/live?token=abc,desk=/videos/desk.mp4\n"
    )

    config = load_config({"VIDEO_STREAM_URLS_FILE": str(urls), "VIDEO_STREAM_URL": "rtmp://x/live/test"})

    assert [(c.name, c.url) for c in config.cameras] == [
        ("door", "rtsp://admin:s3cret@10.0.0.5/stream"),
        ("hall", "rtsp://cam/live?token=abc"),
        ("desk", "/videos/desk.mp4"),
    ]


def test_the_cameras_variable_and_their_file_are_not_both_set(tmp_path: Path) -> None:
    urls = tmp_path / "urls"
    urls.write_text("door=rtsp://cam/door\n")

    with pytest.raises(ConfigError) as raised:
        load_config({"VIDEO_STREAM_URLS": "hall=rtsp://cam/hall", "VIDEO_STREAM_URLS_FILE": str(urls)})

    message = str(raised.value)
    assert "VIDEO_STREAM_URLS and VIDEO_STREAM_URLS_FILE are both set" in message


@pytest.mark.parametrize("what", ["missing", "a folder", "not text"])
def test_a_cameras_file_that_cannot_be_read_is_named_with_its_variable(tmp_path: Path, what: str) -> None:
    path = tmp_path / "urls"
    if what == "a folder":
        path.mkdir()
    elif what == "not text":
        path.write_bytes(b"door=rtsp://admin:s3cret@cam/\xff\n")

    with pytest.raises(ConfigError) as raised:
        load_config({"VIDEO_STREAM_URLS_FILE": str(path)})

    message = str(raised.value)
    assert message.startswith(f"VIDEO_STREAM_URLS_FILE={str(path)!r} ")
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("door=rtsp://admin:s3cret@cam/a\ndoor=rtsp://u:s3cret@cam/b\n", "the name 'door' is taken twice"),
        ("Door=rtsp://admin:s3cret@cam/stream\n", "entry 'Door' (its URL not shown): the name must be"),
        ("rtsp://admin:s3cret@cam/stream?token=s3cret\n", "entry 1 (not shown: it may carry a credential)"),
        ("door=rtsp://cam/live?token=s3cret,rtsp://admin:s3cret@cam/x\n", "entry 2 (not shown"),
        ("\n\n", "there is no entry"),
    ],
)
def test_a_bad_entry_in_the_cameras_file_never_shows_a_password_or_a_query(
    tmp_path: Path, text: str, entry: str
) -> None:
    path = tmp_path / "urls"
    path.write_text(text)

    with pytest.raises(ConfigError) as raised:
        load_config({"VIDEO_STREAM_URLS_FILE": str(path)})

    message = str(raised.value)
    assert message.startswith(f"VIDEO_STREAM_URLS_FILE={str(path)!r}: ") and entry in message
    assert "s3cret" not in message and "token" not in message


def test_a_bad_entry_of_the_variable_never_shows_a_password_either() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"VIDEO_STREAM_URLS": "door=rtsp://cam/a,door=rtsp://admin:s3cret@cam/b"})

    message = str(raised.value)
    assert message.startswith("VIDEO_STREAM_URLS: entry 'door' (its URL not shown): the name 'door' is taken")
    assert "s3cret" not in message
