"""RTF to text: a single pass over RTF tokens (control words, hex escapes, groups and
runs of plain text). Non-text destinations are skipped (font and colour tables,
pictures, embedded object data, field instructions, unknown `\\*` destinations); text
ones are kept (headers, footers, footnotes, comments, document properties, text boxes).
`\\'hh` bytes are decoded in the document's code page, `\\uN` as Unicode, and `\\bin`
lengths are honoured when the data holds them (one past the end would hide the rest of
the document as binary: the rest is read as RTF instead).

Our own rather than striprtf, whose tokenizer steps through plain text one character
at a time (about 0.6 MB/s here); runs of text are one token here.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator

from dlp.extract.node import Context

__all__ = ["rtf_text"]

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\([^a-zA-Z])|([{}])|[\r\n]+|([^\\{}\r\n]+)"
)
_SKIP = frozenset(
    b"""aftncn aftnsep aftnsepc atndate atnicn atnid atnparent atnref atntime atrfend atrfstart bkmkend
    bkmkstart blipuid buptim colorschememapping colortbl creatim datafield datastore defchp defpap do
    docvar ebcend ebcstart factoidname falt fchars ffdeftext ffentrymcr ffexitmcr ffformat ffhelptext
    ffl ffname ffstattext fldinst fldtype fname fontemb fontfile fonttbl formfield ftncn ftnsep ftnsepc
    g generator gridtbl hl hlfr hlinkbase hlloc hlsrc hsv htmltag keycode latentstyles lchars
    levelnumbers leveltext lfolevel linkval list listlevel listname listoverride listoverridetable
    listpicture liststylename listtable listtext lsdlockedexcept macc maccPr mailmerge maln malnScr
    margPr mbar mbarPr mbaseJc mbegChr mborderBox mborderBoxPr mbox mboxPr mchr mcount mctrlPr md mdeg
    mdegHide mden mdiff mdPr me mendChr meqArr meqArrPr mf mfName mfPr mfunc mfuncPr mgroupChr
    mgroupChrPr mgrow mhideBot mhideLeft mhideRight mhideTop mhtmltag mlim mlimloc mlimlow mlimlowPr
    mlimupp mlimuppPr mm mmaddfieldname mmath mmathPict mmathPr mmaxdist mmc mmcJc mmconnectstr
    mmconnectstrdata mmcPr mmcs mmdatasource mmheadersource mmmailsubject mmodso mmodsofilter
    mmodsofldmpdata mmodsomappedname mmodsoname mmodsorecipdata mmodsosort mmodsosrc mmodsotable
    mmodsoudl mmodsoudldata mmodsouniquetag mmPr mmquery mmr mnary mnaryPr mnoBreak mnum mobjDist moMath
    moMathPara moMathParaPr mopEmu mphant mphantPr mplcHide mpos mr mrad mradPr mrPr msepChr mshow mshp
    msPre msPrePr msSub msSubPr msSubSup msSubSupPr msSup msSupPr mstrikeBLTR mstrikeH mstrikeTLBR
    mstrikeV msub msubHide msup msupHide mtransp mtype mvertJc mvfmf mvfml mvtof mvtol mzeroAsc
    mzeroDesc mzeroWid nesttableprops nextfile nonesttables objalias objclass objdata object objname
    objsect objtime oldcprops oldpprops oldsprops oldtprops oleclsid panose password passwordhash pgp
    pgptbl picprop pict pn pnseclvl pntext pntxta pntxtb printim private propname protend protstart
    protusertbl pxe revtbl revtim rsidtbl rxe shppict shprslt sn sp staticval stylesheet sv svb template
    themedata ud upr userprops wgrffmtfilter windowcaption writereservation writereservhash xform
    xmlattrname xmlattrvalue xmlclose xmlname xmlnstbl xmlopen""".split()
)
_KEEP = frozenset(
    b"""annotation atnauthor author category comment company doccomm dptxbxtext footnote header headerf
    headerl headerr info keywords manager operator result shp shpgrp shpinst shptxt subject tc title
    txe xe""".split()
)
_SPECIAL = {
    b"par": "\n",
    b"sect": "\n",
    b"page": "\n",
    b"line": "\n",
    b"row": "\n",
    b"tab": "\t",
    b"cell": "\t",
    b"emdash": "\u2014",
    b"endash": "\u2013",
    b"emspace": "\u2003",
    b"enspace": "\u2002",
    b"qmspace": "\u2005",
    b"bullet": "\u2022",
    b"lquote": "\u2018",
    b"rquote": "\u2019",
    b"ldblquote": "\u201c",
    b"rdblquote": "\u201d",
}
_SYMBOLS = {b"~": "\u00a0", b"_": "\u2011", b"-": "", b"\\": "\\", b"{": "{", b"}": "}"}
_CHECK_EVERY = 20_000
_MAX_GROUPS = 10_000


def rtf_text(data: bytes, ctx: Context) -> Iterator[str]:
    """Pieces of the document's text, in order; checks the item's deadline as it goes."""
    codepage = "cp1252"
    uc_skip = 1
    skipping = False
    starred = False
    stack: list[tuple[int, bool]] = []
    pending = bytearray()
    out: list[str] = []
    to_skip = 0
    position = 0
    count = 0
    while position < len(data):
        match = _TOKEN.match(data, position)
        if match is None:
            position += 1
            continue
        position = match.end()
        count += 1
        if count % _CHECK_EVERY == 0:
            ctx.check_time()
            out.append(_flush(pending, codepage))
            yield "".join(out)
            out.clear()
        word, argument, hexcode, symbol, brace, text = match.groups()
        if hexcode is not None:
            if to_skip:
                to_skip -= 1
            elif not skipping:
                pending.append(int(hexcode, 16))
            continue
        if pending:
            out.append(_flush(pending, codepage))
        if brace == b"{":
            if len(stack) < _MAX_GROUPS:
                stack.append((uc_skip, skipping))
            to_skip = 0
        elif brace == b"}":
            if stack:
                uc_skip, skipping = stack.pop()
            to_skip = 0
        elif symbol is not None:
            if symbol == b"*":
                starred = True
            elif not skipping and not to_skip:
                out.append(_SYMBOLS.get(symbol, ""))
            to_skip = max(0, to_skip - 1)
        elif word is not None:
            to_skip = 0
            if starred and word not in _KEEP:
                skipping = True
            starred = False
            if word in _SKIP:
                skipping = True
            elif word == b"bin" and argument:
                length = max(0, int(argument))
                if position + length <= len(data):
                    position += length
            elif word == b"ansicpg" and argument:
                codepage = _codepage(argument)
            elif word == b"uc" and argument:
                uc_skip = max(0, min(int(argument), 8))
            elif word == b"u" and argument and not skipping:
                point = int(argument)
                point = point + 65536 if point < 0 else point
                out.append(
                    chr(point) if 0 <= point <= 0x10FFFF and not 0xD800 <= point <= 0xDFFF else "\ufffd"
                )
                to_skip = uc_skip
            elif not skipping and word in _SPECIAL:
                out.append(_SPECIAL[word])
        elif text is not None and not skipping:
            if to_skip:
                skipped = min(to_skip, len(text))
                text, to_skip = text[skipped:], to_skip - skipped
            out.append(text.decode(codepage, "replace"))
    out.append(_flush(pending, codepage))
    yield "".join(out)


def _flush(pending: bytearray, codepage: str) -> str:
    text = pending.decode(codepage, "replace")
    pending.clear()
    return text


def _codepage(argument: bytes) -> str:
    name = f"cp{int(argument)}"
    try:
        codecs.lookup(name)
    except LookupError:
        return "cp1252"
    return name
