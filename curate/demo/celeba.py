"""CelebA writer: annotation text files with their quirks, aligned 178x218 crops and in-the-wild photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from curate.demo.common import CORRUPT_BYTES, FaultLog, jpeg_bytes, light, mask_box, rng_for, save_jpeg, truncated_jpeg
from curate.demo.faces import HAIR, Identity, binarize, head, identities, torso
from curate.demo.scenes import BACKGROUNDS, background

ATTRS = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
    "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
    "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()
LANDMARK_KEYS = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
ALIGNED = (178, 218)


def _attributes(ident: Identity, smile: bool, rng: np.random.Generator) -> list[int]:
    known = {
        "Bald": ident.style == "bald",
        "Eyeglasses": ident.glasses,
        "Male": ident.male,
        "No_Beard": not ident.beard,
        "Goatee": ident.beard,
        "Smiling": smile,
        "Mouth_Slightly_Open": smile,
        "Wearing_Lipstick": not ident.male,
        "Oval_Face": ident.face_h / ident.face_w > 1.3,
        "Pale_Skin": ident.skin[0] >= 250,
        "Young": ident.hair != "Gray_Hair",
    }
    for h in HAIR:
        known[h] = ident.style != "bald" and ident.hair == h
    return [1 if known.get(a, rng.random() < 0.2) else -1 for a in ATTRS]


def _scaled_head(ident: Identity, scale: float, yaw: float, roll: float, smile: bool):
    img, lm = head(ident, yaw=yaw, roll=roll, smile=smile)
    w, h = round(img.width * scale), round(img.height * scale)
    img = binarize(img.resize((w, h), Image.BILINEAR))
    return img, {k: (x * scale, y * scale) for k, (x, y) in lm.items()}


def _photo(ident: Identity, rng: np.random.Generator, small: bool):
    """One photo of ``ident``: (aligned image, aligned landmarks, wild image, wild head box)."""
    yaw, roll, smile = float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-12, 12)), bool(rng.random() < 0.5)
    bg = str(rng.choice(BACKGROUNDS))
    shirt = tuple(int(v) for v in rng.integers(30, 230, size=3))
    # aligned: eyes at the CelebA-like position, face filling the frame
    aimg = background(bg, ALIGNED, rng)
    sp, lm = _scaled_head(ident, 1.0, yaw, roll, smile)
    ex = (lm["lefteye"][0] + lm["righteye"][0]) / 2
    ey = (lm["lefteye"][1] + lm["righteye"][1]) / 2
    ox, oy = round(89 - ex), round(111 - ey)
    torso(ImageDraw.Draw(aimg), 89, oy + sp.height * 0.85, 75, ALIGNED[1], shirt)
    aimg.paste(sp, (ox, oy), sp)
    aligned = light(aimg, rng, 0.8)
    alm = [int(round(v)) for k in LANDMARK_KEYS for v in (lm[k][0] + ox, lm[k][1] + oy)]
    # in the wild: a larger photo with the head somewhere, at some scale
    ww, wh = (
        (int(rng.integers(240, 360)), int(rng.integers(220, 320)))
        if small
        else (int(rng.integers(360, 640)), int(rng.integers(320, 520)))
    )
    wimg = background(bg, (ww, wh), rng)
    sp, _ = _scaled_head(ident, float(rng.uniform(0.5, 0.95)) * (wh / 320), yaw, roll, smile)
    sp = sp.crop(sp.getbbox())
    x = int(rng.integers(2, max(3, ww - sp.width - 2)))
    y = int(rng.integers(2, max(3, wh - sp.height - 2)))
    torso(ImageDraw.Draw(wimg), x + sp.width / 2, y + sp.height * 0.85, sp.width * 0.7, wh, shirt)
    wimg.paste(sp, (x, y), sp)
    m = np.zeros((wh, ww), dtype=bool)
    m[y : y + sp.height, x : x + sp.width] = np.asarray(sp.getchannel("A"))[: wh - y, : ww - x] > 0
    x1, y1, x2, y2 = mask_box(m)
    return aligned, alm, light(wimg, rng, 0.8), (x1, y1, x2 - x1, y2 - y1), smile


def _table(rows: list[str], header: str) -> str:
    """CelebA list file: a count line, a header line, then the rows."""
    return "\n".join([str(len(rows)), header, *rows]) + "\n"


def write_celeba(root: Path, seed: int, cfg: dict, faults: FaultLog | None, truth: dict) -> Path:
    base = root / "celeba"
    rng = rng_for(seed, "celeba")
    people = identities(rng, cfg["celeba_identities"])
    shots = [p for p in people for _ in range(int(rng.integers(cfg["celeba_photos"][0], cfg["celeba_photos"][1] + 1)))]
    order = rng.permutation(len(shots))
    part_of = {p.number: int(rng.choice(3, p=[0.8, 0.1, 0.1])) for p in people}
    ident_rows, part_rows, bbox_rows, attr_rows, lm_rows, names = [], [], [], [], [], []
    for k, si in enumerate(order):
        ident = shots[si]
        name = f"{k + 1:06d}.jpg"
        aligned, alm, wild, box, smile = _photo(ident, rng_for(seed, "celeba", name), cfg["small"])
        save_jpeg(aligned, base / "img_align_celeba" / name)
        save_jpeg(wild, base / "img_celeba" / name)
        names.append(name)
        ident_rows.append(f"{name} {ident.number}")
        part_rows.append(f"{name} {part_of[ident.number]}")
        bbox_rows.append(f"{name}{box[0]:>6d}{box[1]:>4d}{box[2]:>4d}{box[3]:>4d}")
        attr_rows.append(name + "".join(f" {v:>2d}" for v in _attributes(ident, smile, rng)))
        lm_rows.append(name + "".join(f"{v:>5d}" for v in alm))
    if faults is not None:
        _inject(base, names, ident_rows, part_rows, bbox_rows, faults)
    files = {
        "identity_CelebA.txt": "\n".join(ident_rows) + "\n",
        "list_eval_partition.txt": "\n".join(part_rows) + "\n",
        "list_bbox_celeba.txt": _table(bbox_rows, "image_id x_1 y_1 width height"),
        "list_attr_celeba.txt": _table(attr_rows, " ".join(ATTRS) + " "),
        "list_landmarks_align_celeba.txt": _table(
            lm_rows,
            "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y",
        ),
    }
    for fname, text in files.items():
        (base / fname).write_text(text, encoding="ascii")
    truth["celeba"] = {
        "identities": {p.number: {"hair": p.hair, "style": p.style, "glasses": p.glasses} for p in people},
        "photos": {name: shots[si].number for name, si in zip(names, order)},
    }
    return base


def _inject(base: Path, names: list[str], ident_rows, part_rows, bbox_rows, log: FaultLog) -> None:
    """One record of each CelebA bad-input kind (image faults hit both the aligned and the wild copy)."""
    if len(names) < 11:
        raise ValueError("fault injection needs at least 11 CelebA images")

    def add(rec, kind, file, stage="index", detail=""):
        log.add("celeba", rec, kind, file, stage=stage, detail=detail)

    dirs = [base / "img_align_celeba", base / "img_celeba"]
    for d in dirs:
        with Image.open(d / names[-1]) as im:
            (d / names[-1]).write_bytes(truncated_jpeg(im))
        (d / names[-2]).write_bytes(CORRUPT_BYTES)
        (d / names[-3]).unlink()
    add(names[-1], "image_truncated", "img_align_celeba", "decode", "JPEG cut mid-scan (aligned and wild copies)")
    add(
        names[-2],
        "image_unreadable",
        "img_align_celeba",
        detail="HTML text under a .jpg name (aligned and wild copies)",
    )
    add(names[-3], "image_missing", "img_align_celeba", detail="listed in identity_CelebA.txt, not on disk")
    # identity file: malformed line, non-integer identity, duplicate listing, path traversal
    ident_rows[1] = names[1]
    add(names[1], "malformed_line", "identity_CelebA.txt", detail="line has no identity field")
    ident_rows[2] = f"{names[2]} abc"
    add(names[2], "bad_identity", "identity_CelebA.txt", detail="identity 'abc' is not an integer")
    ident_rows.append(f"{names[3]} 10177")
    add(names[3], "duplicate_image_id", "identity_CelebA.txt", detail="listed twice with different identities")
    ident_rows.append("../evil.jpg 17")
    part_rows.append("../evil.jpg 0")
    (base / "evil.jpg").write_bytes(jpeg_bytes(Image.new("RGB", ALIGNED, (255, 0, 0))))
    add("../evil.jpg", "path_traversal", "identity_CelebA.txt", detail="image name escapes the image folder")
    part_rows.append("199999.jpg 0")
    add("199999.jpg", "unknown_image", "list_eval_partition.txt", detail="not listed in identity_CelebA.txt")
    # bbox file (only read for in-the-wild images): malformed line, out of bounds, zero area, negative
    bbox_rows[4] = f"{names[4]}    12  34  56"
    add(names[4], "malformed_line", "list_bbox_celeba.txt", detail="4 fields instead of 5")
    bbox_rows[5] = f"{names[5]}  9000 100  50  50"
    add(names[5], "bbox_out_of_bounds", "list_bbox_celeba.txt")
    bbox_rows[6] = f"{names[6]}    20  30   0  40"
    add(names[6], "bbox_zero_area", "list_bbox_celeba.txt")
    bbox_rows[7] = f"{names[7]}   -40  30  50 -40"
    add(names[7], "bbox_negative", "list_bbox_celeba.txt")
