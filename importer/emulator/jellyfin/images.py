"""Image tags as a BaseItemDto carries them (``DtoService.AttachBasicFields`` and
``AddInheritedImages``): the item's own ``ImageTags`` and ``BackdropImageTags``, the
``ImageBlurHashes`` of every tag it names, and what seasons and episodes inherit from their
series: ``ParentBackdrop…`` when they have no backdrop, ``ParentLogo…`` and ``ParentThumb…``
when they have no logo or thumb, and ``SeriesPrimaryImageTag`` (written even with
``EnableImages=false``).

``EnableImageTypes`` keeps only the types it names and ``ImageTypeLimit`` caps each type
(``DtoOptions.GetImageLimit``); a backdrop limit of 0 leaves ``BackdropImageTags`` out.
Tags come from ``credits.Art``: they change whenever the item does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple

from importer.emulator.credits import BACKDROP, BANNER, LOGO, PRIMARY, THUMB, Art

if TYPE_CHECKING:
    from importer.emulator.jellyfin.dto import Renderer
    from importer.emulator.jellyfin.frags import ShowFrags

#: ImageTags keys in the order written, with their credits image type
_SINGLE: Final = (("Primary", PRIMARY), ("Logo", LOGO), ("Thumb", THUMB), ("Banner", BANNER))
_UNLIMITED: Final = 1 << 30

Blur = list[tuple[str, str]]  # (image type, tag) of every tag an item names, for its blurhashes


class Inherited(NamedTuple):
    """What a season or an episode takes from its series, in three runs of properties."""

    before_user: str  # ParentLogoItemId, ParentBackdropItemId, ParentBackdropImageTags
    after_tags: str  # ParentLogoImageTag
    after_blur: str  # ParentThumbItemId, ParentThumbImageTag
    blur: Blur


NOTHING: Final = Inherited("", "", "", [])


def limit(r: Renderer, image_type: str) -> int:
    """How many images of ``image_type`` this request writes (DtoOptions.GetImageLimit)."""
    if r.image_types is not None and image_type not in r.image_types:
        return 0
    return _UNLIMITED if r.image_limit is None else r.image_limit


def own_tags(art: Art) -> dict[str, str]:
    """ImageTags of an item with ``art``, every type (the ground truth's view)."""
    present = {"Primary": art.primary, "Logo": art.logo, "Thumb": art.thumb, "Banner": art.banner}
    return {name: art.tag(code) for name, code in _SINGLE if present[name]}


def backdrop_tags(art: Art) -> list[str]:
    return [art.tag(BACKDROP, k) for k in range(art.backdrops)]


def own_images(r: Renderer, art: Art) -> tuple[str, Blur]:
    """``,"ImageTags":{…},"BackdropImageTags":[…]`` of an item, and its blur entries."""
    blur: Blur = []
    tags = []
    for name, tag in own_tags(art).items():
        if limit(r, name) > 0:
            tags.append(f'"{name}":"{tag}"')
            blur.append((name, tag))
    out = ',"ImageTags":{' + ",".join(tags) + "}"
    most = limit(r, "Backdrop")
    if most > 0:
        backdrops = backdrop_tags(art)[:most]
        out += ',"BackdropImageTags":[' + ",".join(f'"{t}"' for t in backdrops) + "]"
        blur += [("Backdrop", t) for t in backdrops]
    return out, blur


def inherited(r: Renderer, sf: ShowFrags, own: Art | None) -> Inherited:
    """What an item of the series of ``sf`` inherits; ``own``: the item's own art (an
    episode has no backdrop, logo or thumb of its own: None)."""
    art = sf.art
    series = sf.series_id
    before = after_tags = after_blur = ""
    blur: Blur = []
    if art.logo and limit(r, "Logo") > 0 and not (own and own.logo):
        tag = art.tag(LOGO)
        before += f',"ParentLogoItemId":"{series}"'
        after_tags = f',"ParentLogoImageTag":"{tag}"'
        blur.append(("Logo", tag))
    most = limit(r, "Backdrop")
    if art.backdrops and most > 0 and not (own and own.backdrops):
        tags = backdrop_tags(art)[:most]
        before += f',"ParentBackdropItemId":"{series}","ParentBackdropImageTags":['
        before += ",".join(f'"{t}"' for t in tags) + "]"
        blur += [("Backdrop", t) for t in tags]
    if art.thumb and limit(r, "Thumb") > 0 and not (own and own.thumb):
        tag = art.tag(THUMB)
        after_blur = f',"ParentThumbItemId":"{series}","ParentThumbImageTag":"{tag}"'
        blur.append(("Thumb", tag))
    return Inherited(before, after_tags, after_blur, blur)


def blur_json(blurhash: str, *entries: Blur) -> str:
    """``,"ImageBlurHashes":{…}``: every tag named, by type (one hash per show will do)."""
    by_type: dict[str, list[str]] = {}
    for entry in entries:
        for image_type, tag in entry:
            by_type.setdefault(image_type, []).append(f'"{tag}":"{blurhash}"')
    parts = [f'"{t}":{{{",".join(dict.fromkeys(tags))}}}' for t, tags in by_type.items()]
    return ',"ImageBlurHashes":{' + ",".join(parts) + "}"
