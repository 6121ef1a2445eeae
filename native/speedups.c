/*
 * importer._speedups: the compiled hot path.
 *
 * What is here is what profiles of 1,000,000-episode imports showed as per-item
 * Python work (bench/README.md, "Native hot path"): in the decoder, turning a
 * decoded episode page (msgspec Structs) into row tuples, file rows and etags, for
 * Plex and for Jellyfin/Emby (whose dates are ISO 8601 text with 7 fractional
 * digits); in the writer, turning rows into the tuples SQLite binds. The rest of
 * an import is SQLite's C code, msgspec's and the kernel's pipes.
 *
 * Each function here has a pure-Python twin in importer/_purepy.py that gives
 * identical results for every input, errors included; the test suite runs both
 * and compares them on random and hostile input. The extension works on Python
 * objects only and never links SQLite (a second copy of SQLite in the process
 * would break SQLite's POSIX file locks).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>  /* T_OBJECT_EX */
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define IMP_LIKELY(x) __builtin_expect(!!(x), 1)
#define IMP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define IMP_LIKELY(x) (x)
#define IMP_UNLIKELY(x) (x)
#endif

/* ------------------------------------------------------------------------
 * Timestamps
 * ------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
days_in_month(int64_t y, int64_t m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Reads exactly n ASCII digits at s[*pos]; returns -1 when they are not there. */
static int64_t
read_digits(const char *s, Py_ssize_t len, Py_ssize_t *pos, int n)
{
    int64_t v = 0;
    if (*pos + n > len)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = s[*pos + i];
        if (IMP_UNLIKELY(c < '0' || c > '9'))
            return -1;
        v = v * 10 + (c - '0');
    }
    *pos += n;
    return v;
}

/* Returns 0 and sets *out, or -1 when the text is not a timestamp this accepts. */
static int
parse_iso(const char *s, Py_ssize_t len, int64_t *out)
{
    Py_ssize_t p = 0;
    int64_t y, mo, d, h = 0, mi = 0, sec = 0, offset = 0;

    if ((y = read_digits(s, len, &p, 4)) < 1) return -1;
    if (p >= len || s[p++] != '-') return -1;
    if ((mo = read_digits(s, len, &p, 2)) < 1 || mo > 12) return -1;
    if (p >= len || s[p++] != '-') return -1;
    if ((d = read_digits(s, len, &p, 2)) < 1 || d > days_in_month(y, mo)) return -1;
    if (p < len) {
        if (s[p] != 'T' && s[p] != ' ') return -1;
        p++;
        if ((h = read_digits(s, len, &p, 2)) < 0 || h > 23) return -1;
        if (p >= len || s[p++] != ':') return -1;
        if ((mi = read_digits(s, len, &p, 2)) < 0 || mi > 59) return -1;
        if (p >= len || s[p++] != ':') return -1;
        if ((sec = read_digits(s, len, &p, 2)) < 0 || sec > 59) return -1;
        if (p < len && s[p] == '.') {
            /* Jellyfin sends 7 fractional digits; any 1 to 9 are accepted and dropped. */
            Py_ssize_t start = ++p;
            while (p < len && s[p] >= '0' && s[p] <= '9') p++;
            if (p == start || p - start > 9) return -1;
        }
        if (p < len) {
            char z = s[p++];
            if (z == 'Z') {
                offset = 0;
            } else if (z == '+' || z == '-') {
                int64_t oh, om;
                if ((oh = read_digits(s, len, &p, 2)) < 0 || oh > 23) return -1;
                if (p < len && s[p] == ':') p++;
                if ((om = read_digits(s, len, &p, 2)) < 0 || om > 59) return -1;
                offset = (oh * 3600 + om * 60) * (z == '-' ? -1 : 1);
            } else {
                return -1;
            }
        }
        if (p != len) return -1;
    }
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return 0;
}

PyDoc_STRVAR(parse_timestamp_doc,
"parse_timestamp(value, /)\n--\n\n"
"Unix seconds (UTC) of an ISO 8601 date or date-time such as Jellyfin's\n"
"'2024-03-05T12:34:56.1234567Z'; None stays None. Fractions are dropped, an\n"
"offset is applied, no zone means UTC. Raises ValueError for anything else.");

static PyObject *
parse_timestamp(PyObject *Py_UNUSED(module), PyObject *value)
{
    Py_ssize_t len;
    const char *s;
    int64_t out;

    if (value == Py_None)
        Py_RETURN_NONE;
    if (IMP_UNLIKELY(!PyUnicode_Check(value))) {
        PyErr_Format(PyExc_TypeError, "timestamp must be str or None, not %.100s",
                     Py_TYPE(value)->tp_name);
        return NULL;
    }
    s = PyUnicode_AsUTF8AndSize(value, &len);  /* borrowed buffer */
    if (s == NULL)
        return NULL;  /* lone surrogates: UnicodeEncodeError is a ValueError */
    if (IMP_UNLIKELY(parse_iso(s, len, &out) < 0)) {
        PyErr_Format(PyExc_ValueError, "invalid timestamp: %R", value);
        return NULL;
    }
    return PyLong_FromLongLong((long long)out);  /* new reference */
}

/* ------------------------------------------------------------------------
 * Etags: xxh3_64 hex digest of the msgpack encoding of a row
 *
 * Both halves are compiled already (msgspec, xxhash), so this calls them: a
 * msgpack encoder written here, byte for byte msgspec's, measured no faster
 * (0.95x; bench/README.md, "Native hot path"). Calling them from C only saves
 * the Python frame.
 * ------------------------------------------------------------------------ */

static PyObject *xxh3_hexdigest = NULL;  /* xxhash.xxh3_64_hexdigest */
static PyObject *msgpack_encode = NULL;  /* msgspec.msgpack.encode */

static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *m = PyImport_ImportModule(module);
    if (m == NULL)
        return NULL;
    PyObject *attr = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return attr;
}

static PyObject *
etag_of(PyObject *value)
{
    if (xxh3_hexdigest == NULL && (xxh3_hexdigest = import_attr("xxhash", "xxh3_64_hexdigest")) == NULL)
        return NULL;
    if (msgpack_encode == NULL && (msgpack_encode = import_attr("msgspec.msgpack", "encode")) == NULL)
        return NULL;
    PyObject *bytes = PyObject_CallOneArg(msgpack_encode, value);
    if (bytes == NULL)
        return NULL;
    PyObject *out = PyObject_CallOneArg(xxh3_hexdigest, bytes);
    Py_DECREF(bytes);
    return out;
}

PyDoc_STRVAR(content_etag_doc,
"content_etag(value, /)\n--\n\n"
"xxh3_64 hex digest of the msgpack encoding of value (as msgspec encodes it):\n"
"the change detector of rows whose server sends no etag.");

static PyObject *
content_etag(PyObject *Py_UNUSED(module), PyObject *value)
{
    return etag_of(value);
}

/* ------------------------------------------------------------------------
 * Row building: decoded pages (msgspec Structs) to row tuples
 *
 * These replace the per-item loops of importer/sources/plex.py and jellyfin.py
 * for episode pages, the bulk of every library. They read the Structs'
 * attributes by name, exactly as the Python loops do, and build the same tuples
 * (column order: importer/rows.py).
 * ------------------------------------------------------------------------ */

static PyObject *S_type, *S_rating_key, *S_grandparent_rating_key, *S_parent_rating_key,
    *S_guid, *S_title, *S_summary, *S_index, *S_parent_index, *S_originally_available_at,
    *S_duration, *S_added_at, *S_updated_at, *S_guids, *S_media, *S_parts, *S_id, *S_file,
    *S_size, *S_container, *S_video_codec, *S_audio_codec, *S_width, *S_height,
    *S_imdb_prefix, *S_tmdb_prefix, *S_tvdb_prefix,
    *S_location_type, *S_virtual, *S_provider_ids, *S_imdb, *S_tmdb, *S_tvdb, *S_series_id,
    *S_season_id, *S_parent_index_number, *S_index_number, *S_index_number_end, *S_name,
    *S_overview, *S_premiere_date, *S_run_time_ticks, *S_date_created, *S_etag,
    *S_media_sources, *S_media_streams, *S_path, *S_codec, *S_video, *S_audio, *S_no_date,
    *TICKS_PER_MS;

/* Interned once: attribute lookups by these are pointer comparisons. */
static int
intern_names(void)
{
#define NAME(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return -1
    NAME(S_type, "type"); NAME(S_rating_key, "rating_key");
    NAME(S_grandparent_rating_key, "grandparent_rating_key");
    NAME(S_parent_rating_key, "parent_rating_key"); NAME(S_guid, "guid");
    NAME(S_title, "title"); NAME(S_summary, "summary"); NAME(S_index, "index");
    NAME(S_parent_index, "parent_index");
    NAME(S_originally_available_at, "originally_available_at");
    NAME(S_duration, "duration"); NAME(S_added_at, "added_at"); NAME(S_updated_at, "updated_at");
    NAME(S_guids, "guids"); NAME(S_media, "media"); NAME(S_parts, "parts"); NAME(S_id, "id");
    NAME(S_file, "file"); NAME(S_size, "size"); NAME(S_container, "container");
    NAME(S_video_codec, "video_codec"); NAME(S_audio_codec, "audio_codec");
    NAME(S_width, "width"); NAME(S_height, "height");
    NAME(S_imdb_prefix, "imdb://"); NAME(S_tmdb_prefix, "tmdb://"); NAME(S_tvdb_prefix, "tvdb://");
    NAME(S_location_type, "location_type"); NAME(S_virtual, "Virtual");
    NAME(S_provider_ids, "provider_ids"); NAME(S_imdb, "imdb"); NAME(S_tmdb, "tmdb");
    NAME(S_tvdb, "tvdb"); NAME(S_series_id, "series_id"); NAME(S_season_id, "season_id");
    NAME(S_parent_index_number, "parent_index_number"); NAME(S_index_number, "index_number");
    NAME(S_index_number_end, "index_number_end"); NAME(S_name, "name");
    NAME(S_overview, "overview"); NAME(S_premiere_date, "premiere_date");
    NAME(S_run_time_ticks, "run_time_ticks"); NAME(S_date_created, "date_created");
    NAME(S_etag, "etag"); NAME(S_media_sources, "media_sources");
    NAME(S_media_streams, "media_streams"); NAME(S_path, "path"); NAME(S_codec, "codec");
    NAME(S_video, "Video"); NAME(S_audio, "Audio"); NAME(S_no_date, "0001-01-01");
#undef NAME
    return (TICKS_PER_MS = PyLong_FromLong(10000)) == NULL ? -1 : 0;
}

/* Reading a field through PyObject_GetAttr costs a type lookup and a descriptor
   call each time: a quarter of the row builders' time. A msgspec Struct's fields
   are slots (a member descriptor at a fixed offset in the object), so the offset
   is found once per (type, name) and the field read directly after that. The
   table keeps a reference to each type, so no other type can take its address;
   when it is full, lookups simply take the slow path. */
#define SLOT_TABLE 256
static struct {
    PyTypeObject *type;
    PyObject *name;
    Py_ssize_t offset;  /* -1: not a plain slot, use PyObject_GetAttr */
} slot_table[SLOT_TABLE];

static Py_ssize_t
slot_offset(PyTypeObject *type, PyObject *name)
{
    size_t h = (((uintptr_t)type >> 4) * 31 + ((uintptr_t)name >> 4)) % SLOT_TABLE;
    for (int probe = 0; probe < 8; probe++, h = (h + 1) % SLOT_TABLE) {
        if (slot_table[h].type == type && slot_table[h].name == name)
            return slot_table[h].offset;
        if (slot_table[h].type != NULL)
            continue;
        Py_ssize_t offset = -1;
        /* Only where nothing can intercept the read: the generic getattr, and a
           member descriptor (a data descriptor: it wins over an instance dict). */
        if (type->tp_getattro == PyObject_GenericGetAttr) {
            PyObject *descr = PyObject_GetAttr((PyObject *)type, name);
            if (descr == NULL) {
                PyErr_Clear();
            } else {
                if (Py_IS_TYPE(descr, &PyMemberDescr_Type)
                    && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX)
                    offset = ((PyMemberDescrObject *)descr)->d_member->offset;
                Py_DECREF(descr);
            }
        }
        Py_INCREF(type);
        Py_INCREF(name);
        slot_table[h].type = type;
        slot_table[h].name = name;
        slot_table[h].offset = offset;
        return offset;
    }
    return -1;
}

/* obj.name as a new reference, or NULL with an error set. A row's values are read
   one after the other and checked together (tuple_steal): once one has failed,
   the rest are not looked up, so the first error is the one raised. */
static PyObject *
GET(PyObject *obj, PyObject *name)
{
    if (PyErr_Occurred())
        return NULL;
    Py_ssize_t offset = slot_offset(Py_TYPE(obj), name);
    if (offset >= 0) {
        PyObject *value = *(PyObject **)((char *)obj + offset);
        if (value != NULL) {  /* NULL: unset, GetAttr raises the AttributeError */
            Py_INCREF(value);
            return value;
        }
    }
    return PyObject_GetAttr(obj, name);
}

/* Python's `a or b` on two new references: keeps one, releases the other. */
static PyObject *
or_else(PyObject *a, PyObject *b)
{
    int truth = b == NULL ? -1 : PyObject_IsTrue(a);
    if (truth < 0) {
        Py_DECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    if (truth) {
        Py_DECREF(b);
        return a;
    }
    Py_DECREF(a);
    return b;
}

/* `a or None` on a new reference. */
static PyObject *
or_none(PyObject *a)
{
    Py_INCREF(Py_None);
    return or_else(a, Py_None);
}

/* importer.sources.common.as_id on a new reference: ids are stored as text. */
static PyObject *
as_id(PyObject *value)
{
    if (value == NULL || PyUnicode_CheckExact(value))
        return value;
    PyObject *s = PyObject_Str(value);
    Py_DECREF(value);
    return s;
}

/* Like as_id, but None stays None. */
static PyObject *
as_id_or_none(PyObject *value)
{
    return value == Py_None ? value : as_id(value);
}

/* A new list holding the items of any sequence (for a `for` over a Struct field). */
static PyObject *
as_list(PyObject *seq)
{
    if (seq == NULL)
        return NULL;
    PyObject *list = PySequence_List(seq);
    Py_DECREF(seq);
    return list;
}

/* Builds a tuple from n new references (NULLs allowed: then all are released and
   NULL returned, with the first error still set). */
static PyObject *
tuple_steal(PyObject **items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] == NULL) {
            for (Py_ssize_t j = 0; j < n; j++)
                Py_XDECREF(items[j]);
            return NULL;
        }
    }
    PyObject *t = PyTuple_New(n);
    if (t == NULL) {
        for (Py_ssize_t j = 0; j < n; j++)
            Py_DECREF(items[j]);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(t, i, items[i]);
    return t;
}

/* (*row, etag): a row with its etag appended, as a new tuple. */
static PyObject *
with_etag(PyObject *row, PyObject *etag)
{
    Py_ssize_t n = PyTuple_GET_SIZE(row);
    PyObject *t = PyTuple_New(n + 1);
    if (t == NULL) {
        Py_DECREF(etag);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyTuple_GET_ITEM(row, i);
        Py_INCREF(v);
        PyTuple_SET_ITEM(t, i, v);
    }
    PyTuple_SET_ITEM(t, n, etag);
    return t;
}

/* Appends and releases a new reference; -1 on error. */
static int
append_steal(PyObject *list, PyObject *item)
{
    if (item == NULL)
        return -1;
    int r = PyList_Append(list, item);
    Py_DECREF(item);
    return r;
}

/* importer.sources.plex.external_ids: (imdb, tmdb, tvdb) from Guid[] (borrowed) into
   out[3], which holds new references (the last of each kind wins). */
static int
plex_external_ids(PyObject *guids, PyObject **out)
{
    PyObject *prefixes[3] = {S_imdb_prefix, S_tmdb_prefix, S_tvdb_prefix};
    PyObject *list = PySequence_List(guids);
    if (list == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *value = GET(PyList_GET_ITEM(list, i), S_id);
        if (value == NULL)
            goto fail;
        if (!PyUnicode_Check(value)) {
            PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute 'startswith'",
                         Py_TYPE(value)->tp_name);
            Py_DECREF(value);
            goto fail;
        }
        for (int k = 0; k < 3; k++) {
            if (PyUnicode_Tailmatch(value, prefixes[k], 0, PY_SSIZE_T_MAX, -1) == 1) {
                PyObject *rest = PyUnicode_Substring(value, 7, PY_SSIZE_T_MAX);
                if (rest == NULL) {
                    Py_DECREF(value);
                    goto fail;
                }
                Py_XSETREF(out[k], rest);
                break;
            }
        }
        Py_DECREF(value);
    }
    Py_DECREF(list);
    return 0;
fail:
    Py_DECREF(list);
    return -1;
}

/* The file rows of one Plex episode (one per Media x Part), appended to own. */
static int
plex_files(PyObject *eid, PyObject *e, PyObject *own)
{
    PyObject *media = as_list(GET(e, S_media));
    if (media == NULL)
        return -1;
    for (Py_ssize_t mi = 0; mi < PyList_GET_SIZE(media); mi++) {
        PyObject *m = PyList_GET_ITEM(media, mi);
        PyObject *parts = as_list(GET(m, S_parts));
        if (parts == NULL)
            goto fail;
        int single = PyList_GET_SIZE(parts) == 1;
        for (Py_ssize_t pi = 0; pi < PyList_GET_SIZE(parts); pi++) {
            PyObject *p = PyList_GET_ITEM(parts, pi);
            PyObject *f[12];
            Py_INCREF(eid);
            f[0] = eid;
            f[1] = as_id(GET(p, S_id));
            f[2] = PyLong_FromSsize_t(mi);
            f[3] = PyLong_FromSsize_t(pi);
            f[4] = GET(p, S_file);
            f[5] = GET(p, S_size);
            f[6] = GET(p, S_container);
            if (f[6] != NULL)
                f[6] = or_else(f[6], GET(m, S_container));
            f[7] = GET(m, S_video_codec);
            f[8] = GET(m, S_audio_codec);
            f[9] = GET(m, S_width);
            f[10] = GET(m, S_height);
            /* a part's own duration; the Media's only when it is the one part */
            f[11] = GET(p, S_duration);
            if (f[11] == Py_None && single) {
                Py_DECREF(f[11]);
                f[11] = GET(m, S_duration);
            }
            if (append_steal(own, tuple_steal(f, 12)) < 0) {
                Py_DECREF(parts);
                goto fail;
            }
        }
        Py_DECREF(parts);
    }
    Py_DECREF(media);
    return 0;
fail:
    Py_DECREF(media);
    return -1;
}

PyDoc_STRVAR(plex_episode_rows_doc,
"plex_episode_rows(items, expected_type, /)\n--\n\n"
"(rows, files, ids, bad_type) of a Plex episodes page's decoded Metadata.\n"
"Stops at the first item whose type is neither None nor expected_type and\n"
"returns that type as bad_type (None when every item is an episode).");

static PyObject *
plex_episode_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "plex_episode_rows expects 2 arguments");
        return NULL;
    }
    PyObject *items = PySequence_List(args[0]), *expected = args[1];
    PyObject *rows = PyList_New(0), *files = PyList_New(0), *ids = PyList_New(0);
    PyObject *bad = Py_None, *result = NULL;
    if (items == NULL || rows == NULL || files == NULL || ids == NULL)
        goto done;

    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *e = PyList_GET_ITEM(items, i);
        PyObject *type = GET(e, S_type);
        if (type == NULL)
            goto done;
        if (type != Py_None) {
            int same = PyObject_RichCompareBool(type, expected, Py_EQ);
            if (same < 0) {
                Py_DECREF(type);
                goto done;
            }
            if (same == 0) {
                bad = type;  /* the caller raises DecodeError naming it */
                goto pack_result;
            }
        }
        Py_DECREF(type);

        PyObject *eid = as_id(GET(e, S_rating_key));
        if (eid == NULL)
            goto done;
        PyObject *own = PyList_New(0);
        if (own == NULL || plex_files(eid, e, own) < 0) {
            Py_XDECREF(own);
            Py_DECREF(eid);
            goto done;
        }
        PyObject *ext[3] = {Py_None, Py_None, Py_None};
        Py_INCREF(Py_None); Py_INCREF(Py_None); Py_INCREF(Py_None);
        PyObject *guids = GET(e, S_guids);
        int has = guids == NULL ? -1 : PyObject_IsTrue(guids);
        if (has > 0)
            has = plex_external_ids(guids, ext) < 0 ? -1 : 1;
        Py_XDECREF(guids);
        if (has < 0) {
            Py_DECREF(ext[0]); Py_DECREF(ext[1]); Py_DECREF(ext[2]);
            Py_DECREF(own);
            Py_DECREF(eid);
            goto done;
        }
        PyObject *r[16];
        Py_INCREF(eid);
        r[0] = eid;
        r[1] = as_id_or_none(GET(e, S_grandparent_rating_key));
        r[2] = as_id_or_none(GET(e, S_parent_rating_key));  /* absent with hidden seasons */
        r[3] = GET(e, S_guid);
        r[4] = GET(e, S_parent_index);
        r[5] = GET(e, S_index);
        Py_INCREF(Py_None);
        r[6] = Py_None;  /* episode_number_end: Plex lists a double episode twice */
        r[7] = GET(e, S_title);
        r[8] = GET(e, S_summary);
        r[9] = GET(e, S_originally_available_at);
        r[10] = GET(e, S_duration);
        r[11] = ext[0];
        r[12] = ext[1];
        r[13] = ext[2];
        r[14] = GET(e, S_added_at);
        r[15] = GET(e, S_updated_at);
        PyObject *row = tuple_steal(r, 16);
        PyObject *both = row == NULL ? NULL : PyTuple_Pack(2, row, own);
        PyObject *etag = both == NULL ? NULL : etag_of(both);
        Py_XDECREF(both);
        int ok = etag != NULL
            && append_steal(rows, with_etag(row, etag)) == 0
            && PyList_SetSlice(files, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, own) == 0  /* files += own */
            && PyList_Append(ids, eid) == 0;
        Py_XDECREF(row);
        Py_DECREF(own);
        Py_DECREF(eid);
        if (!ok)
            goto done;
    }
pack_result:
    result = PyTuple_Pack(4, rows, files, ids, bad);
done:
    if (bad != Py_None)
        Py_DECREF(bad);
    Py_XDECREF(items);
    Py_XDECREF(rows);
    Py_XDECREF(files);
    Py_XDECREF(ids);
    return result;
}
/* ticks // 10_000 (Jellyfin's 100 ns ticks to ms), None stays None; steals ticks. */
static PyObject *
ticks_to_ms(PyObject *ticks)
{
    if (ticks == NULL || ticks == Py_None)
        return ticks;
    PyObject *ms = PyNumber_FloorDivide(ticks, TICKS_PER_MS);
    Py_DECREF(ticks);
    return ms;
}

/* Jellyfin dates, steals value: None for None and for "0001-01-01..." (no date);
   else the unix seconds (day == 0) or the YYYY-MM-DD (day == 1) of a valid
   timestamp. ValueError for an invalid one: the caller names the page. */
static PyObject *
jellyfin_date(PyObject *value, int day)
{
    if (value == NULL || value == Py_None)
        return value;
    if (PyUnicode_Check(value) && PyUnicode_Tailmatch(value, S_no_date, 0, PY_SSIZE_T_MAX, -1) == 1) {
        Py_DECREF(value);
        Py_RETURN_NONE;
    }
    PyObject *seconds = parse_timestamp(NULL, value);
    if (seconds == NULL || !day) {
        Py_DECREF(value);
        return seconds;
    }
    Py_DECREF(seconds);
    PyObject *out = PyUnicode_Substring(value, 0, 10);  /* validated: 10 ASCII chars */
    Py_DECREF(value);
    return out;
}

/* The first Video and the first Audio stream of a media source (new references,
   or None). */
static int
first_streams(PyObject *src, PyObject **video, PyObject **audio)
{
    PyObject *streams = GET(src, S_media_streams);
    if (streams == NULL)
        return -1;
    if (streams == Py_None) {
        Py_DECREF(streams);
        return 0;
    }
    PyObject *list = as_list(streams);
    if (list == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *stream = PyList_GET_ITEM(list, i);
        PyObject *type = GET(stream, S_type);
        if (type == NULL)
            goto fail;
        int is_video = PyObject_RichCompareBool(type, S_video, Py_EQ);
        int is_audio = is_video ? 0 : PyObject_RichCompareBool(type, S_audio, Py_EQ);
        Py_DECREF(type);
        if (is_video < 0 || is_audio < 0)
            goto fail;
        PyObject **slot = is_video ? video : is_audio ? audio : NULL;
        if (slot != NULL && *slot == Py_None) {
            Py_INCREF(stream);
            Py_SETREF(*slot, stream);
        }
    }
    Py_DECREF(list);
    return 0;
fail:
    Py_DECREF(list);
    return -1;
}

/* stream.name, or None when there is no stream. */
static PyObject *
get_or_none(PyObject *stream, PyObject *name)
{
    if (stream == Py_None) {
        Py_INCREF(Py_None);
        return Py_None;
    }
    return GET(stream, name);
}

/* importer.sources.jellyfin._files: one row per media source, appended to own. */
static int
jellyfin_files(PyObject *eid, PyObject *sources, PyObject *own)
{
    PyObject *list = PySequence_List(sources);
    if (list == NULL)
        return -1;
    for (Py_ssize_t mi = 0; mi < PyList_GET_SIZE(list); mi++) {
        PyObject *src = PyList_GET_ITEM(list, mi);
        PyObject *video = Py_None, *audio = Py_None;
        Py_INCREF(Py_None);
        Py_INCREF(Py_None);
        if (first_streams(src, &video, &audio) < 0) {
            Py_DECREF(video);
            Py_DECREF(audio);
            Py_DECREF(list);
            return -1;
        }
        PyObject *f[12];
        Py_INCREF(eid);
        f[0] = eid;
        f[1] = GET(src, S_id);
        if (f[1] != NULL) {
            Py_INCREF(eid);
            f[1] = or_else(f[1], eid);
        }
        f[2] = PyLong_FromSsize_t(mi);
        f[3] = PyLong_FromLong(0);
        f[4] = GET(src, S_path);
        f[5] = GET(src, S_size);
        f[6] = GET(src, S_container);
        f[7] = get_or_none(video, S_codec);
        f[8] = get_or_none(audio, S_codec);
        f[9] = get_or_none(video, S_width);
        f[10] = get_or_none(video, S_height);
        f[11] = ticks_to_ms(GET(src, S_run_time_ticks));
        Py_DECREF(video);
        Py_DECREF(audio);
        if (append_steal(own, tuple_steal(f, 12)) < 0) {
            Py_DECREF(list);
            return -1;
        }
    }
    Py_DECREF(list);
    return 0;
}

/* (imdb, tmdb, tvdb) of an item's ProviderIds into out[3]; "" (a cleared id) is None. */
static int
jellyfin_ids(PyObject *e, PyObject **out)
{
    PyObject *p = GET(e, S_provider_ids);
    if (p == NULL)
        return -1;
    PyObject *names[3] = {S_imdb, S_tmdb, S_tvdb};
    for (int k = 0; k < 3; k++) {
        if (p == Py_None) {
            Py_INCREF(Py_None);
            out[k] = Py_None;
            continue;
        }
        PyObject *v = GET(p, names[k]);
        out[k] = v == NULL ? NULL : or_none(v);
        if (out[k] == NULL) {
            while (k-- > 0)
                Py_DECREF(out[k]);
            Py_DECREF(p);
            return -1;
        }
    }
    Py_DECREF(p);
    return 0;
}

PyDoc_STRVAR(jellyfin_episode_rows_doc,
"jellyfin_episode_rows(items, /)\n--\n\n"
"(rows, files, ids) of a Jellyfin/Emby episodes page's decoded Items, leaving\n"
"out virtual (missing) episodes. ValueError for an invalid date.");

static PyObject *
jellyfin_episode_rows(PyObject *Py_UNUSED(module), PyObject *arg)
{
    PyObject *items = PySequence_List(arg);
    PyObject *rows = PyList_New(0), *files = PyList_New(0), *ids = PyList_New(0);
    PyObject *result = NULL;
    if (items == NULL || rows == NULL || files == NULL || ids == NULL)
        goto done;

    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *e = PyList_GET_ITEM(items, i);
        PyObject *location = GET(e, S_location_type);
        if (location == NULL)
            goto done;
        int virtual = PyObject_RichCompareBool(location, S_virtual, Py_EQ);
        Py_DECREF(location);
        if (virtual < 0)
            goto done;
        if (virtual)  /* a missing episode: no file */
            continue;

        PyObject *r[16], *ext[3];
        if (jellyfin_ids(e, ext) < 0)
            goto done;
        PyObject *eid = GET(e, S_id);
        if (eid == NULL) {
            Py_DECREF(ext[0]); Py_DECREF(ext[1]); Py_DECREF(ext[2]);
            goto done;
        }
        Py_INCREF(eid);
        r[0] = eid;
        r[1] = GET(e, S_series_id);
        r[2] = GET(e, S_season_id);  /* None for some: the writer links them by number */
        Py_INCREF(Py_None);
        r[3] = Py_None;  /* guid: Jellyfin has none */
        r[4] = GET(e, S_parent_index_number);
        r[5] = GET(e, S_index_number);
        r[6] = GET(e, S_index_number_end);
        r[7] = GET(e, S_name);
        r[8] = GET(e, S_overview);
        r[9] = jellyfin_date(GET(e, S_premiere_date), 1);
        /* the Python twin evaluates left to right and stops at the first error */
        r[10] = r[9] == NULL ? NULL : ticks_to_ms(GET(e, S_run_time_ticks));
        r[11] = ext[0];
        r[12] = ext[1];
        r[13] = ext[2];
        r[14] = r[10] == NULL ? NULL : jellyfin_date(GET(e, S_date_created), 0);
        Py_INCREF(Py_None);
        r[15] = Py_None;  /* updated_at: items carry no DateLastSaved */
        PyObject *row = tuple_steal(r, 16);
        if (row == NULL) {
            Py_DECREF(eid);
            goto done;
        }
        PyObject *own = PyList_New(0);
        PyObject *sources = own == NULL ? NULL : GET(e, S_media_sources);
        int has = sources == NULL ? -1 : PyObject_IsTrue(sources);
        if (has > 0 && jellyfin_files(eid, sources, own) < 0)
            has = -1;
        Py_XDECREF(sources);
        PyObject *etag = has < 0 ? NULL : GET(e, S_etag);
        if (etag != NULL) {
            int truth = PyObject_IsTrue(etag);
            if (truth <= 0) {
                Py_CLEAR(etag);
                if (truth == 0) {
                    PyObject *both = PyTuple_Pack(2, row, own);
                    etag = both == NULL ? NULL : etag_of(both);
                    Py_XDECREF(both);
                }
            }
        }
        int ok = etag != NULL
            && append_steal(rows, with_etag(row, etag)) == 0
            && PyList_SetSlice(files, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, own) == 0
            && PyList_Append(ids, eid) == 0;
        Py_DECREF(row);
        Py_XDECREF(own);
        Py_DECREF(eid);
        if (!ok)
            goto done;
    }
    result = PyTuple_Pack(3, rows, files, ids);
done:
    Py_XDECREF(items);
    Py_XDECREF(rows);
    Py_XDECREF(files);
    Py_XDECREF(ids);
    return result;
}

/* ------------------------------------------------------------------------
 * Bindings: the writer's rows as SQLite takes them
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(bind_new_rows_doc,
"bind_new_rows(first, library_id, rows, parents, /) -> (bindings, orphans)\n\n"
"The INSERT bindings of new rows: (first + n, library_id, *parent ids, *row) for\n"
"row n, a parent id being parents[k].get(row[k + 1]); and the ids of the rows with\n"
"a parent id None (link() resolves them later).");

static PyObject *
bind_new_rows(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "bind_new_rows takes 4 arguments");
        return NULL;
    }
    PyObject *first_obj = args[0], *library_id = args[1], *rows = args[2], *parents = args[3];
    if (!PyList_Check(rows) || !PyTuple_Check(parents)) {
        PyErr_SetString(PyExc_TypeError, "bind_new_rows: rows must be a list, parents a tuple");
        return NULL;
    }
    Py_ssize_t np = PyTuple_GET_SIZE(parents);
    for (Py_ssize_t k = 0; k < np; k++) {
        if (!PyDict_Check(PyTuple_GET_ITEM(parents, k))) {
            PyErr_SetString(PyExc_TypeError, "bind_new_rows: parents must be dicts");
            return NULL;
        }
    }
    long long first = PyLong_AsLongLong(first_obj);
    if (first == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    PyObject *bindings = PyList_New(n);  /* new */
    PyObject *orphans = PyList_New(0);   /* new */
    PyObject *result = NULL;
    if (bindings == NULL || orphans == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);  /* borrowed */
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) <= np) {
            PyErr_SetString(PyExc_TypeError, "bind_new_rows: a row is not a tuple of its columns");
            goto done;
        }
        Py_ssize_t width = PyTuple_GET_SIZE(row);
        PyObject *out = PyTuple_New(2 + np + width);  /* new */
        if (out == NULL)
            goto done;
        PyList_SET_ITEM(bindings, i, out);  /* steals out */
        PyObject *row_id = PyLong_FromLongLong(first + i);  /* new */
        if (row_id == NULL)
            goto done;
        PyTuple_SET_ITEM(out, 0, row_id);
        Py_INCREF(library_id);
        PyTuple_SET_ITEM(out, 1, library_id);
        int orphan = 0;
        for (Py_ssize_t k = 0; k < np; k++) {
            PyObject *key = PyTuple_GET_ITEM(row, k + 1);  /* borrowed */
            PyObject *parent = NULL;
            if (key != Py_None) {
                parent = PyDict_GetItemWithError(PyTuple_GET_ITEM(parents, k), key);  /* borrowed */
                if (parent == NULL && PyErr_Occurred())
                    goto done;
            }
            if (parent == NULL) {
                parent = Py_None;
                orphan = 1;
            }
            Py_INCREF(parent);
            PyTuple_SET_ITEM(out, 2 + k, parent);
        }
        for (Py_ssize_t c = 0; c < width; c++) {
            PyObject *value = PyTuple_GET_ITEM(row, c);
            Py_INCREF(value);
            PyTuple_SET_ITEM(out, 2 + np + c, value);
        }
        if (orphan && PyList_Append(orphans, row_id) < 0)
            goto done;
    }
    result = PyTuple_Pack(2, bindings, orphans);
done:
    Py_XDECREF(bindings);
    Py_XDECREF(orphans);
    return result;
}

PyDoc_STRVAR(bind_files_doc,
"bind_files(episode_ids, files, /) -> bindings\n\n"
"The INSERT bindings of media file rows: (episode_ids[f[0]], *f[1:]) for each file\n"
"whose episode (by source id, f[0]) is in episode_ids; the others are left out.");

static PyObject *
bind_files(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "bind_files takes 2 arguments");
        return NULL;
    }
    PyObject *episode_ids = args[0], *files = args[1];
    if (!PyDict_Check(episode_ids) || !PyList_Check(files)) {
        PyErr_SetString(PyExc_TypeError, "bind_files: episode_ids must be a dict, files a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(files);
    PyObject *bindings = PyList_New(0);  /* new */
    if (bindings == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *file = PyList_GET_ITEM(files, i);  /* borrowed */
        if (!PyTuple_Check(file) || PyTuple_GET_SIZE(file) < 1) {
            PyErr_SetString(PyExc_TypeError, "bind_files: a file row is not a tuple of its columns");
            goto fail;
        }
        PyObject *episode = PyDict_GetItemWithError(episode_ids, PyTuple_GET_ITEM(file, 0));  /* borrowed */
        if (episode == NULL) {
            if (PyErr_Occurred())
                goto fail;
            continue;
        }
        Py_ssize_t width = PyTuple_GET_SIZE(file);
        PyObject *out = PyTuple_New(width);  /* new */
        if (out == NULL)
            goto fail;
        Py_INCREF(episode);
        PyTuple_SET_ITEM(out, 0, episode);
        for (Py_ssize_t c = 1; c < width; c++) {
            PyObject *value = PyTuple_GET_ITEM(file, c);
            Py_INCREF(value);
            PyTuple_SET_ITEM(out, c, value);
        }
        int failed = PyList_Append(bindings, out);
        Py_DECREF(out);
        if (failed < 0)
            goto fail;
    }
    return bindings;
fail:
    Py_DECREF(bindings);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Module
 * ------------------------------------------------------------------------ */

static PyMethodDef speedups_methods[] = {
    {"parse_timestamp", (PyCFunction)parse_timestamp, METH_O, parse_timestamp_doc},
    {"content_etag", (PyCFunction)content_etag, METH_O, content_etag_doc},
    {"plex_episode_rows", (PyCFunction)(void (*)(void))plex_episode_rows, METH_FASTCALL,
     plex_episode_rows_doc},
    {"jellyfin_episode_rows", (PyCFunction)jellyfin_episode_rows, METH_O, jellyfin_episode_rows_doc},
    {"bind_new_rows", (PyCFunction)(void (*)(void))bind_new_rows, METH_FASTCALL, bind_new_rows_doc},
    {"bind_files", (PyCFunction)(void (*)(void))bind_files, METH_FASTCALL, bind_files_doc},
    {NULL, NULL, 0, NULL},
};

/* The interned names are process-wide and immortal in practice (never freed):
   made once, whichever interpreter imports the module first. */
static int
speedups_exec(PyObject *Py_UNUSED(module))
{
    return S_type == NULL ? intern_names() : 0;
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, (void *)speedups_exec},
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "importer._speedups",
    .m_doc = "Compiled hot path of importer; see importer/_purepy.py for its twin.",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
