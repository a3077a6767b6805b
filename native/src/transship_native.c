/*
 * transship_native: the few POSIX calls Node.js does not expose.
 *
 *   llistxattr, lgetxattr, lsetxattr, lremovexattr   extended attributes (never following symlinks)
 *   mknod, mkfifo                                     device nodes and FIFOs with exact modes
 *   seekData, seekHole                                lseek(SEEK_DATA / SEEK_HOLE) for sparse files
 *   makedev, major, minor                             the platform's dev_t encoding
 *
 * Plain C against node_api.h only. Every call is synchronous: each is one or two cheap syscalls.
 * Failures throw an Error shaped like Node's fs errors: `code` (errno name), `errno` (negative, as in
 * Node), `syscall` and, for path calls, `path` (and `attribute` for the xattr name).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#if !defined(__linux__) && !defined(__APPLE__)
#error "transship_native supports Linux (and, untested, macOS)"
#endif

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/sysmacros.h>
#endif

#if defined(__APPLE__)
/* macOS has one xattr API with an options argument; map the Linux l* calls onto it. */
#define llistxattr(p, b, s) listxattr((p), (b), (s), XATTR_NOFOLLOW)
#define lgetxattr(p, n, b, s) getxattr((p), (n), (b), (s), 0, XATTR_NOFOLLOW)
#define lsetxattr(p, n, v, s, f) setxattr((p), (n), (v), (s), 0, (f) | XATTR_NOFOLLOW)
#define lremovexattr(p, n) removexattr((p), (n), XATTR_NOFOLLOW)
#endif

#include <node_api.h>

/* Bumped whenever the exported surface changes; src/native/index.ts refuses a stale build. */
#define TRANSSHIP_NATIVE_VERSION 1

/* How many times a size-query/read pair is retried when the attribute list or value grows in between. */
#define XATTR_GROWTH_RETRIES 16

/* Largest integer a JS number holds exactly. */
#define MAX_SAFE_INTEGER 9007199254740991LL

/* ------------------------------------------------------------------------------------------------ */
/* errors                                                                                           */
/* ------------------------------------------------------------------------------------------------ */

static const char *errno_name(int err) {
  switch (err) {
    case E2BIG: return "E2BIG";
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EBUSY: return "EBUSY";
    case EDQUOT: return "EDQUOT";
    case EEXIST: return "EEXIST";
    case EFAULT: return "EFAULT";
    case EFBIG: return "EFBIG";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EMFILE: return "EMFILE";
    case EMLINK: return "EMLINK";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENFILE: return "ENFILE";
#ifdef ENODATA
    case ENODATA: return "ENODATA";
#endif
#if defined(ENOATTR) && (!defined(ENODATA) || ENOATTR != ENODATA)
    case ENOATTR: return "ENODATA"; /* macOS spelling of "no such attribute" */
#endif
    case ENODEV: return "ENODEV";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case ENOSYS: return "ENOSYS";
    case ENOTDIR: return "ENOTDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENOTSUP: return "ENOTSUP";
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP: return "ENOTSUP";
#endif
    case ENXIO: return "ENXIO";
    case EOVERFLOW: return "EOVERFLOW";
    case EPERM: return "EPERM";
    case ERANGE: return "ERANGE";
    case EROFS: return "EROFS";
    case ESPIPE: return "ESPIPE";
    case ESTALE: return "ESTALE";
    case ETXTBSY: return "ETXTBSY";
    case EXDEV: return "EXDEV";
    default: break;
  }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  {
    const char *name = strerrorname_np(err);
    if (name != NULL) return name;
  }
#endif
  return "UNKNOWN";
}

static int is_not_supported(int err) {
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
  if (err == EOPNOTSUPP) return 1;
#endif
  return err == ENOTSUP;
}

static void set_string(napi_env env, napi_value object, const char *key, const char *value) {
  napi_value v;
  if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok) {
    napi_set_named_property(env, object, key, v);
  }
}

/* Throws `CODE: message, syscall 'path' 'attribute'` with code/errno/syscall/path/attribute set. */
static void throw_errno(napi_env env, int err, const char *syscall, const char *path, const char *attribute) {
  const char *code = errno_name(err);
  const char *message = strerror(err);
  size_t size = strlen(code) + strlen(message) + strlen(syscall) + (path ? strlen(path) : 0) +
                (attribute ? strlen(attribute) : 0) + 32;
  char *text = malloc(size);
  napi_value code_value, message_value, error, errno_value;

  if (text == NULL) {
    napi_throw_error(env, code, message);
    return;
  }
  if (path != NULL && attribute != NULL) {
    snprintf(text, size, "%s: %s, %s '%s' '%s'", code, message, syscall, path, attribute);
  } else if (path != NULL) {
    snprintf(text, size, "%s: %s, %s '%s'", code, message, syscall, path);
  } else {
    snprintf(text, size, "%s: %s, %s", code, message, syscall);
  }

  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_error(env, code_value, message_value, &error) != napi_ok) {
    free(text);
    napi_throw_error(env, code, message);
    return;
  }
  free(text);

  if (napi_create_int32(env, -err, &errno_value) == napi_ok) {
    napi_set_named_property(env, error, "errno", errno_value);
  }
  set_string(env, error, "syscall", syscall);
  if (path != NULL) set_string(env, error, "path", path);
  if (attribute != NULL) set_string(env, error, "attribute", attribute);
  napi_throw(env, error);
}

static void throw_type_error(napi_env env, const char *argument, const char *expected) {
  char text[160];
  snprintf(text, sizeof text, "The \"%s\" argument must be %s", argument, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", text);
}

static void throw_range_error(napi_env env, const char *argument, const char *expected) {
  char text[160];
  snprintf(text, sizeof text, "The value of \"%s\" is out of range. It must be %s", argument, expected);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", text);
}

/* ------------------------------------------------------------------------------------------------ */
/* arguments                                                                                        */
/* ------------------------------------------------------------------------------------------------ */

/* Bytes of a TypedArray (Buffer, Uint8Array, ...): data pointer and byte length. 0 on success. */
static int get_bytes(napi_env env, napi_value value, const char *argument, const uint8_t **data, size_t *length) {
  bool is_typedarray = false;
  napi_typedarray_type type;
  size_t count, element;
  void *pointer;

  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray ||
      napi_get_typedarray_info(env, value, &type, &count, &pointer, NULL, NULL) != napi_ok) {
    throw_type_error(env, argument, "a Buffer or Uint8Array");
    return -1;
  }
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: element = 1; break;
    case napi_int16_array:
    case napi_uint16_array: element = 2; break;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: element = 4; break;
    default: element = 8; break;
  }
  *data = pointer;
  *length = count * element;
  return 0;
}

/*
 * A NUL-terminated copy of a path or attribute name given as a string (UTF-8) or as bytes (a Buffer, for
 * file names that are not valid UTF-8). The caller frees *out. 0 on success, -1 with an exception pending.
 */
static int get_cstring(napi_env env, napi_value value, const char *argument, char **out) {
  napi_valuetype type;
  size_t length = 0;
  char *copy;

  *out = NULL;
  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (type == napi_string) {
    if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return -1;
    copy = malloc(length + 1);
    if (copy == NULL) {
      throw_errno(env, ENOMEM, "malloc", NULL, NULL);
      return -1;
    }
    if (napi_get_value_string_utf8(env, value, copy, length + 1, &length) != napi_ok) {
      free(copy);
      return -1;
    }
  } else {
    const uint8_t *data;
    if (get_bytes(env, value, argument, &data, &length) != 0) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
      throw_type_error(env, argument, "of type string or an instance of Buffer");
      return -1;
    }
    copy = malloc(length + 1);
    if (copy == NULL) {
      throw_errno(env, ENOMEM, "malloc", NULL, NULL);
      return -1;
    }
    if (length > 0) memcpy(copy, data, length);
  }
  copy[length] = '\0';
  if (strlen(copy) != length || length == 0) {
    char text[160];
    snprintf(text, sizeof text, "The argument '%s' must be a non-empty string without null bytes", argument);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", text);
    free(copy);
    return -1;
  }
  *out = copy;
  return 0;
}

/* An integer in [min, max] given as a JS number. 0 on success, -1 with an exception pending. */
static int get_integer(napi_env env, napi_value value, const char *argument, int64_t min, int64_t max, int64_t *out) {
  napi_valuetype type;
  double number;
  char expected[96];

  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (type != napi_number) {
    throw_type_error(env, argument, "of type number");
    return -1;
  }
  if (napi_get_value_double(env, value, &number) != napi_ok) return -1;
  if (!isfinite(number) || floor(number) != number || number < (double)min || number > (double)max) {
    snprintf(expected, sizeof expected, "an integer >= %lld and <= %lld", (long long)min, (long long)max);
    throw_range_error(env, argument, expected);
    return -1;
  }
  *out = (int64_t)number;
  return 0;
}

/* A dev_t given as a number or a bigint (fs.stat with {bigint: true}). */
static int get_dev(napi_env env, napi_value value, const char *argument, uint64_t *out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (type == napi_bigint) {
    bool lossless = false;
    if (napi_get_value_bigint_uint64(env, value, out, &lossless) != napi_ok) return -1;
    if (!lossless) {
      throw_range_error(env, argument, "a non-negative 64-bit integer");
      return -1;
    }
    return 0;
  }
  {
    int64_t number;
    if (get_integer(env, value, argument, 0, MAX_SAFE_INTEGER, &number) != 0) return -1;
    *out = (uint64_t)number;
    return 0;
  }
}

static napi_value undefined_value(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

#define GET_ARGS(count)                                                              \
  size_t argc = (count);                                                             \
  napi_value argv[(count) > 0 ? (count) : 1];                                        \
  do {                                                                               \
    size_t i_;                                                                       \
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL; \
    for (i_ = argc; i_ < (size_t)(count); i_++) argv[i_] = undefined_value(env);     \
  } while (0)

/* ------------------------------------------------------------------------------------------------ */
/* extended attributes                                                                              */
/* ------------------------------------------------------------------------------------------------ */

/* llistxattr(path): string[] - the attribute names of path itself; [] where xattrs are unsupported. */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  char *path = NULL;
  char *list = NULL;
  ssize_t length = -1;
  int attempt, err = 0;
  napi_value result = NULL;

  GET_ARGS(1);
  if (get_cstring(env, argv[0], "path", &path) != 0) return NULL;

  for (attempt = 0; attempt < XATTR_GROWTH_RETRIES; attempt++) {
    ssize_t size;
    do {
      size = llistxattr(path, NULL, 0);
    } while (size < 0 && errno == EINTR);
    if (size < 0) {
      err = errno;
      break;
    }
    if (size == 0) {
      length = 0;
      break;
    }
    list = malloc((size_t)size);
    if (list == NULL) {
      err = ENOMEM;
      break;
    }
    do {
      length = llistxattr(path, list, (size_t)size);
    } while (length < 0 && errno == EINTR);
    if (length >= 0) break;
    err = errno;
    free(list);
    list = NULL;
    if (err != ERANGE) break; /* ERANGE: the list grew since the size query; ask again */
  }
  if (length < 0 && err == 0) err = ERANGE;

  if (length < 0 && !is_not_supported(err)) {
    throw_errno(env, err, "llistxattr", path, NULL);
  } else if (napi_create_array(env, &result) == napi_ok && length > 0) {
    uint32_t index = 0;
    ssize_t start = 0, i;
    for (i = 0; i < length; i++) {
      if (list[i] != '\0') continue;
      if (i > start) {
        napi_value name;
        if (napi_create_string_utf8(env, list + start, (size_t)(i - start), &name) != napi_ok ||
            napi_set_element(env, result, index++, name) != napi_ok) {
          result = NULL;
          break;
        }
      }
      start = i + 1;
    }
  }
  free(list);
  free(path);
  return result;
}

/* lgetxattr(path, name): Buffer - the value of one attribute of path itself. */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  char *path = NULL, *name = NULL;
  char *value = NULL;
  ssize_t length = -1;
  int attempt, err = 0;
  napi_value result = NULL;

  GET_ARGS(2);
  if (get_cstring(env, argv[0], "path", &path) != 0) return NULL;
  if (get_cstring(env, argv[1], "name", &name) != 0) {
    free(path);
    return NULL;
  }

  for (attempt = 0; attempt < XATTR_GROWTH_RETRIES; attempt++) {
    ssize_t size;
    do {
      size = lgetxattr(path, name, NULL, 0);
    } while (size < 0 && errno == EINTR);
    if (size < 0) {
      err = errno;
      break;
    }
    value = malloc(size > 0 ? (size_t)size : 1);
    if (value == NULL) {
      err = ENOMEM;
      break;
    }
    if (size == 0) {
      length = 0;
      break;
    }
    do {
      length = lgetxattr(path, name, value, (size_t)size);
    } while (length < 0 && errno == EINTR);
    if (length >= 0) break;
    err = errno;
    free(value);
    value = NULL;
    if (err != ERANGE) break; /* ERANGE: the value grew since the size query; ask again */
  }
  if (length < 0 && err == 0) err = ERANGE;

  if (length < 0) {
    throw_errno(env, err, "lgetxattr", path, name);
  } else if (napi_create_buffer_copy(env, (size_t)length, value, NULL, &result) != napi_ok) {
    result = NULL;
  }
  free(value);
  free(name);
  free(path);
  return result;
}

/* lsetxattr(path, name, value, flags = 0): void - flags: 0, XATTR_CREATE or XATTR_REPLACE. */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  char *path = NULL, *name = NULL;
  const uint8_t *data;
  size_t length;
  int64_t flags = 0;
  napi_valuetype flags_type;
  int rc;

  GET_ARGS(4);
  if (napi_typeof(env, argv[3], &flags_type) != napi_ok) return NULL;
  if (flags_type != napi_undefined &&
      get_integer(env, argv[3], "flags", 0, XATTR_CREATE | XATTR_REPLACE, &flags) != 0) {
    return NULL;
  }
  if (get_bytes(env, argv[2], "value", &data, &length) != 0) return NULL;
  if (get_cstring(env, argv[0], "path", &path) != 0) return NULL;
  if (get_cstring(env, argv[1], "name", &name) != 0) {
    free(path);
    return NULL;
  }

  do {
    rc = lsetxattr(path, name, length > 0 ? (const void *)data : (const void *)"", length, (int)flags);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) throw_errno(env, errno, "lsetxattr", path, name);
  free(name);
  free(path);
  return NULL;
}

/* lremovexattr(path, name): void */
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  char *path = NULL, *name = NULL;
  int rc;

  GET_ARGS(2);
  if (get_cstring(env, argv[0], "path", &path) != 0) return NULL;
  if (get_cstring(env, argv[1], "name", &name) != 0) {
    free(path);
    return NULL;
  }
  do {
    rc = lremovexattr(path, name);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) throw_errno(env, errno, "lremovexattr", path, name);
  free(name);
  free(path);
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* device nodes and FIFOs                                                                           */
/* ------------------------------------------------------------------------------------------------ */

/* The umask narrows mknod/mkfifo; set the permission bits exactly afterwards. Removes the node on failure. */
static int apply_exact_mode(napi_env env, const char *path, mode_t mode) {
  int rc;
  do {
    rc = chmod(path, mode & 07777);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    unlink(path);
    throw_errno(env, err, "chmod", path, NULL);
    return -1;
  }
  return 0;
}

/* mknod(path, mode, major, minor): void - mode carries the file type (S_IFCHR, S_IFBLK, ...) and permissions. */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  char *path = NULL;
  int64_t mode, major_number, minor_number;
  int rc;

  GET_ARGS(4);
  if (get_integer(env, argv[1], "mode", 0, 0xFFFFFFFFLL, &mode) != 0) return NULL;
  if (get_integer(env, argv[2], "major", 0, 0xFFFFFFFFLL, &major_number) != 0) return NULL;
  if (get_integer(env, argv[3], "minor", 0, 0xFFFFFFFFLL, &minor_number) != 0) return NULL;
  if (get_cstring(env, argv[0], "path", &path) != 0) return NULL;

  rc = mknod(path, (mode_t)mode, makedev((unsigned int)major_number, (unsigned int)minor_number));
  if (rc < 0) {
    throw_errno(env, errno, "mknod", path, NULL);
  } else {
    apply_exact_mode(env, path, (mode_t)mode);
  }
  free(path);
  return NULL;
}

/* mkfifo(path, mode): void */
static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  char *path = NULL;
  int64_t mode;

  GET_ARGS(2);
  if (get_integer(env, argv[1], "mode", 0, 07777, &mode) != 0) return NULL;
  if (get_cstring(env, argv[0], "path", &path) != 0) return NULL;

  if (mkfifo(path, (mode_t)mode) < 0) {
    throw_errno(env, errno, "mkfifo", path, NULL);
  } else {
    apply_exact_mode(env, path, (mode_t)mode);
  }
  free(path);
  return NULL;
}

/* makedev(major, minor): number */
static napi_value js_makedev(napi_env env, napi_callback_info info) {
  int64_t major_number, minor_number;
  uint64_t dev;
  napi_value result;

  GET_ARGS(2);
  if (get_integer(env, argv[0], "major", 0, 0xFFFFFFFFLL, &major_number) != 0) return NULL;
  if (get_integer(env, argv[1], "minor", 0, 0xFFFFFFFFLL, &minor_number) != 0) return NULL;
  dev = (uint64_t)makedev((unsigned int)major_number, (unsigned int)minor_number);
  if (dev > (uint64_t)MAX_SAFE_INTEGER) {
    throw_range_error(env, "major", "small enough for the device number to fit a JS number");
    return NULL;
  }
  if (napi_create_int64(env, (int64_t)dev, &result) != napi_ok) return NULL;
  return result;
}

static napi_value js_major(napi_env env, napi_callback_info info) {
  uint64_t dev;
  napi_value result;
  GET_ARGS(1);
  if (get_dev(env, argv[0], "dev", &dev) != 0) return NULL;
  if (napi_create_int64(env, (int64_t)major((dev_t)dev), &result) != napi_ok) return NULL;
  return result;
}

static napi_value js_minor(napi_env env, napi_callback_info info) {
  uint64_t dev;
  napi_value result;
  GET_ARGS(1);
  if (get_dev(env, argv[0], "dev", &dev) != 0) return NULL;
  if (napi_create_int64(env, (int64_t)minor((dev_t)dev), &result) != napi_ok) return NULL;
  return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* sparse files                                                                                     */
/* ------------------------------------------------------------------------------------------------ */

/*
 * lseek(fd, offset, whence) for SEEK_DATA / SEEK_HOLE, returning -1 at ENXIO (no data / hole at or after
 * offset). The file position of fd is left where it was, so the call has no side effect on the fd.
 */
static napi_value seek(napi_env env, napi_callback_info info, int whence) {
  int64_t fd, offset;
  off_t saved, found;
  int err;
  napi_value result;

  GET_ARGS(2);
  if (get_integer(env, argv[0], "fd", 0, INT32_MAX, &fd) != 0) return NULL;
  if (get_integer(env, argv[1], "offset", 0, MAX_SAFE_INTEGER, &offset) != 0) return NULL;
  if (sizeof(off_t) < 8 && offset > (int64_t)INT32_MAX) {
    throw_errno(env, EOVERFLOW, "lseek", NULL, NULL);
    return NULL;
  }

  saved = lseek((int)fd, 0, SEEK_CUR);
  if (saved < 0) {
    throw_errno(env, errno, "lseek", NULL, NULL);
    return NULL;
  }
  found = lseek((int)fd, (off_t)offset, whence);
  err = errno;
  lseek((int)fd, saved, SEEK_SET);
  if (found < 0) {
    if (err != ENXIO) {
      throw_errno(env, err, "lseek", NULL, NULL);
      return NULL;
    }
    found = -1;
  }
  if (napi_create_int64(env, (int64_t)found, &result) != napi_ok) return NULL;
  return result;
}

static napi_value js_seek_data(napi_env env, napi_callback_info info) {
#ifdef SEEK_DATA
  return seek(env, info, SEEK_DATA);
#else
  throw_errno(env, ENOSYS, "lseek", NULL, NULL);
  return NULL;
#endif
}

static napi_value js_seek_hole(napi_env env, napi_callback_info info) {
#ifdef SEEK_HOLE
  return seek(env, info, SEEK_HOLE);
#else
  throw_errno(env, ENOSYS, "lseek", NULL, NULL);
  return NULL;
#endif
}

/* ------------------------------------------------------------------------------------------------ */
/* module                                                                                           */
/* ------------------------------------------------------------------------------------------------ */

static napi_value int_value(napi_env env, int64_t number) {
  napi_value v = NULL;
  napi_create_int64(env, number, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, js_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mkfifo", NULL, js_mkfifo, NULL, NULL, NULL, napi_enumerable, NULL},
      {"makedev", NULL, js_makedev, NULL, NULL, NULL, napi_enumerable, NULL},
      {"major", NULL, js_major, NULL, NULL, NULL, napi_enumerable, NULL},
      {"minor", NULL, js_minor, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seekData", NULL, js_seek_data, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seekHole", NULL, js_seek_hole, NULL, NULL, NULL, napi_enumerable, NULL},
      {"XATTR_CREATE", NULL, NULL, NULL, NULL, int_value(env, XATTR_CREATE), napi_enumerable, NULL},
      {"XATTR_REPLACE", NULL, NULL, NULL, NULL, int_value(env, XATTR_REPLACE), napi_enumerable, NULL},
      {"version", NULL, NULL, NULL, NULL, int_value(env, TRANSSHIP_NATIVE_VERSION), napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) {
    return NULL;
  }
  return exports;
}
