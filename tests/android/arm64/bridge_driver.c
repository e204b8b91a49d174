/*
 * Runs the APK's own JNI bridge (lib/arm64-v8a/libtflitejni.so) outside Android, for
 * tests/android/test_arm64.py: built for aarch64 Linux and run under qemu-user, it loads the
 * bridge with dlopen, hands it a fake JNIEnv, and calls its Java_* entry points the way
 * org.movinet.demo.core.StreamingClassifier does. The bridge in turn calls the arm64 TFLite
 * runtime (liblitert-lm.so for aarch64 Linux, the same C API as the one in the APK).
 *
 * The fake JNIEnv implements the JNI functions the bridge uses, on a handful of tagged
 * objects (class, string, direct/heap buffer, long/int/object array); every other slot
 * aborts with a message, so a bridge that starts using a new JNI function fails loudly.
 * Exceptions thrown by the bridge are recorded and checked after every call.
 *
 * Usage:
 *   bridge_driver stream BRIDGE APK OFFSET LENGTH FRAMES THREADS OUT
 *       maps LENGTH bytes of the APK at OFFSET (the stored assets/model.tflite) as the
 *       model; FRAMES holds raw image-tensor bytes, one tensor per frame; writes the
 *       logits of every frame as float32 to OUT (dequantized for an 8-bit model). States
 *       are carried by name; a state whose output quantization differs from its input's is
 *       re-encoded like Quantization.requantize. Prints key=value lines.
 *   bridge_driver errors BRIDGE APK OFFSET LENGTH
 *       drives the bridge's error paths and prints "case=Class: message" lines.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <jni.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- fake JNI objects ---- */
enum { K_CLASS = 1, K_STRING, K_DIRECT, K_HEAP, K_LONGS, K_INTS, K_OBJECTS };

typedef struct Obj {
  int kind;
  char* text;        /* class name or UTF-8 string */
  void* data;        /* buffer address or array elements */
  jlong size;        /* capacity in bytes or element count */
} Obj;

static Obj* new_obj(int kind) {
  Obj* o = calloc(1, sizeof(Obj));
  if (o == NULL) abort();
  o->kind = kind;
  return o;
}

static Obj* as_obj(void* ref, int kind, const char* where) {
  Obj* o = ref;
  if (o == NULL || o->kind != kind) {
    fprintf(stderr, "fake JNI: %s got a wrong or null object\n", where);
    exit(3);
  }
  return o;
}

static char pending[1024]; /* "Class: message" of the exception the bridge threw, or "" */

static void unimplemented(void) {
  fprintf(stderr, "fake JNI: the bridge called a JNI function this driver does not provide\n");
  exit(3);
}

static jclass j_find_class(JNIEnv* env, const char* name) {
  Obj* o = new_obj(K_CLASS);
  (void)env;
  o->text = strdup(name);
  return (jclass)o;
}

static jint j_throw_new(JNIEnv* env, jclass cls, const char* message) {
  (void)env;
  snprintf(pending, sizeof pending, "%s: %s", as_obj(cls, K_CLASS, "ThrowNew")->text, message);
  return 0;
}

static void* j_direct_address(JNIEnv* env, jobject buffer) {
  Obj* o = (Obj*)buffer;
  (void)env;
  return (o != NULL && o->kind == K_DIRECT) ? o->data : NULL;
}

static jlong j_direct_capacity(JNIEnv* env, jobject buffer) {
  Obj* o = (Obj*)buffer;
  (void)env;
  return (o != NULL && o->kind == K_DIRECT) ? o->size : -1;
}

static jobjectArray j_new_object_array(JNIEnv* env, jsize n, jclass cls, jobject init) {
  Obj* o = new_obj(K_OBJECTS);
  (void)env;
  (void)cls;
  (void)init;
  o->data = calloc((size_t)n + 1, sizeof(Obj*));
  o->size = n;
  return (jobjectArray)o;
}

static jstring j_new_string_utf(JNIEnv* env, const char* utf) {
  Obj* o = new_obj(K_STRING);
  (void)env;
  o->text = strdup(utf);
  return (jstring)o;
}

static void j_set_object_element(JNIEnv* env, jobjectArray array, jsize i, jobject value) {
  Obj* o = as_obj(array, K_OBJECTS, "SetObjectArrayElement");
  (void)env;
  if (i < 0 || i >= o->size) unimplemented();
  ((Obj**)o->data)[i] = (Obj*)value;
}

static void j_delete_local_ref(JNIEnv* env, jobject ref) {
  (void)env;
  (void)ref; /* Strings stay alive in the array that holds them. */
}

static jarray new_array(int kind, jsize n, size_t element) {
  Obj* o = new_obj(kind);
  o->data = calloc((size_t)n + 1, element);
  o->size = n;
  return (jarray)o;
}

static jlongArray j_new_long_array(JNIEnv* env, jsize n) {
  (void)env;
  return (jlongArray)new_array(K_LONGS, n, sizeof(jlong));
}

static jintArray j_new_int_array(JNIEnv* env, jsize n) {
  (void)env;
  return (jintArray)new_array(K_INTS, n, sizeof(jint));
}

static void j_set_long_region(JNIEnv* env, jlongArray a, jsize start, jsize n, const jlong* v) {
  Obj* o = as_obj(a, K_LONGS, "SetLongArrayRegion");
  (void)env;
  if (start < 0 || start + n > o->size) unimplemented();
  memcpy((jlong*)o->data + start, v, (size_t)n * sizeof(jlong));
}

static void j_set_int_region(JNIEnv* env, jintArray a, jsize start, jsize n, const jint* v) {
  Obj* o = as_obj(a, K_INTS, "SetIntArrayRegion");
  (void)env;
  if (start < 0 || start + n > o->size) unimplemented();
  memcpy((jint*)o->data + start, v, (size_t)n * sizeof(jint));
}

static const char* j_get_string_utf(JNIEnv* env, jstring s, jboolean* is_copy) {
  (void)env;
  if (is_copy != NULL) *is_copy = JNI_FALSE;
  return as_obj(s, K_STRING, "GetStringUTFChars")->text;
}

static void j_release_string_utf(JNIEnv* env, jstring s, const char* chars) {
  (void)env;
  (void)s;
  (void)chars;
}

static struct JNINativeInterface_ table;
static JNIEnv env_value = &table;
static JNIEnv* env = &env_value;

static void init_env(void) {
  void** slots = (void**)&table;
  size_t i;
  for (i = 0; i < sizeof table / sizeof(void*); ++i) slots[i] = (void*)unimplemented;
  table.FindClass = j_find_class;
  table.ThrowNew = j_throw_new;
  table.GetDirectBufferAddress = j_direct_address;
  table.GetDirectBufferCapacity = j_direct_capacity;
  table.NewObjectArray = j_new_object_array;
  table.NewStringUTF = j_new_string_utf;
  table.SetObjectArrayElement = j_set_object_element;
  table.DeleteLocalRef = j_delete_local_ref;
  table.NewLongArray = j_new_long_array;
  table.NewIntArray = j_new_int_array;
  table.SetLongArrayRegion = j_set_long_region;
  table.SetIntArrayRegion = j_set_int_region;
  table.GetStringUTFChars = j_get_string_utf;
  table.ReleaseStringUTFChars = j_release_string_utf;
}

static jobject direct_buffer(void* data, jlong size) {
  Obj* o = new_obj(K_DIRECT);
  o->data = data;
  o->size = size;
  return (jobject)o;
}

/* ---- the bridge's entry points, by their JNI names ---- */
typedef jstring (*VersionFn)(JNIEnv*, jclass);
typedef jlongArray (*CreateFn)(JNIEnv*, jclass, jobject, jint);
typedef jobjectArray (*NamesFn)(JNIEnv*, jclass, jlong);
typedef jlong (*RunnerFn)(JNIEnv*, jclass, jlong, jstring);
typedef jlong (*TensorFn)(JNIEnv*, jclass, jlong, jstring, jboolean);
typedef jintArray (*InfoFn)(JNIEnv*, jclass, jlong);
typedef void (*CopyFn)(JNIEnv*, jclass, jlong, jobject);
typedef void (*InvokeFn)(JNIEnv*, jclass, jlong);
typedef void (*DeleteFn)(JNIEnv*, jclass, jlong, jlong, jlong, jlong, jlong);

static struct {
  VersionFn version;
  CreateFn create;
  NamesFn keys, inputs, outputs;
  RunnerFn runner;
  TensorFn tensor;
  InfoFn info;
  CopyFn copy_in, copy_out;
  InvokeFn invoke;
  DeleteFn delete_all;
} bridge;

static void* symbol(void* lib, const char* name) {
  char full[256];
  void* fn;
  snprintf(full, sizeof full, "Java_org_movinet_demo_core_TfLiteBridge_%s", name);
  fn = dlsym(lib, full);
  if (fn == NULL) {
    fprintf(stderr, "bridge has no %s\n", full);
    exit(3);
  }
  return fn;
}

static void load_bridge(const char* path) {
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    exit(3);
  }
  bridge.version = (VersionFn)symbol(lib, "version");
  bridge.create = (CreateFn)symbol(lib, "createInterpreter");
  bridge.keys = (NamesFn)symbol(lib, "signatureKeys");
  bridge.runner = (RunnerFn)symbol(lib, "createSignatureRunner");
  bridge.inputs = (NamesFn)symbol(lib, "inputNames");
  bridge.outputs = (NamesFn)symbol(lib, "outputNames");
  bridge.tensor = (TensorFn)symbol(lib, "tensor");
  bridge.info = (InfoFn)symbol(lib, "tensorInfo");
  bridge.copy_in = (CopyFn)symbol(lib, "copyToTensor");
  bridge.copy_out = (CopyFn)symbol(lib, "copyFromTensor");
  bridge.invoke = (InvokeFn)symbol(lib, "invoke");
  bridge.delete_all = (DeleteFn)symbol(lib, "deleteAll");
}

/* Exits when the last bridge call threw: a Java caller would have seen the exception. */
static void no_exception(const char* call) {
  if (pending[0] != '\0') {
    fprintf(stderr, "%s threw %s\n", call, pending);
    exit(4);
  }
}

/* Maps [offset, offset + length) of a file read-only, like FileChannel.map on the asset. */
static void* map_range(const char* path, long offset, long length) {
  long page = sysconf(_SC_PAGESIZE);
  long start = offset - offset % page;
  int fd = open(path, O_RDONLY);
  char* base;
  if (fd < 0) {
    perror(path);
    exit(3);
  }
  base = mmap(NULL, (size_t)(length + offset - start), PROT_READ, MAP_PRIVATE, fd, start);
  close(fd);
  if (base == MAP_FAILED) {
    perror("mmap");
    exit(3);
  }
  return base + (offset - start);
}

/* ---- tensors ---- */
typedef struct {
  const char* name;
  jlong in, out;          /* tensor handles */
  jint type, bytes;       /* of the input tensor */
  float in_scale, out_scale;
  jint in_zero, out_zero;
  unsigned char *current, *next;
} State;

typedef struct {
  jint type, bytes;
  float scale;
  jint zero;
} Info;

static Info tensor_info(jlong tensor) {
  Obj* raw = as_obj(bridge.info(env, NULL, tensor), K_INTS, "tensorInfo");
  jint* v = raw->data;
  Info info;
  no_exception("tensorInfo");
  info.type = v[0];
  info.bytes = v[1];
  memcpy(&info.scale, &v[3], sizeof(float));
  info.zero = v[4];
  return info;
}

static jlong tensor(jlong runner, const char* name, int is_input) {
  jlong handle = bridge.tensor(env, NULL, runner, j_new_string_utf(env, name),
                               is_input ? JNI_TRUE : JNI_FALSE);
  no_exception("tensor");
  return handle;
}

#define T_UINT8 3
#define T_INT8 9
#define T_FLOAT32 1

static int clamp_q(int q, int type) {
  int low = type == T_INT8 ? -128 : 0, high = type == T_INT8 ? 127 : 255;
  return q < low ? low : (q > high ? high : q);
}

static int read_q(const unsigned char* p, int type) {
  return type == T_INT8 ? (int)(signed char)*p : (int)*p;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int stream(char** argv) {
  const char *apk = argv[3], *frames_path = argv[6], *out_path = argv[8];
  long offset = atol(argv[4]), length = atol(argv[5]);
  int threads = atoi(argv[7]);
  void* model = map_range(apk, offset, length);
  Obj* handles;
  jlong* h;
  Obj *keys, *inputs, *outputs;
  jlong runner, image, logits;
  Info image_info, logits_info;
  State states[256];
  int num_states = 0, i, j, frames;
  FILE *frames_file, *out;
  unsigned char *frame_bytes, *logit_bytes;
  float* logit_values;
  int num_classes;
  double total_ms = 0;

  printf("model_magic=%.4s\n", (const char*)model + 4);
  printf("version=%s\n", as_obj(bridge.version(env, NULL), K_STRING, "version")->text);
  handles = as_obj(bridge.create(env, NULL, direct_buffer(model, length), threads), K_LONGS,
                   "createInterpreter");
  no_exception("createInterpreter");
  h = handles->data;
  keys = as_obj(bridge.keys(env, NULL, h[2]), K_OBJECTS, "signatureKeys");
  for (i = 0; i < keys->size; ++i) {
    printf("signature=%s\n", ((Obj**)keys->data)[i]->text);
  }
  runner = bridge.runner(env, NULL, h[2], j_new_string_utf(env, "serving_default"));
  no_exception("createSignatureRunner");
  inputs = as_obj(bridge.inputs(env, NULL, runner), K_OBJECTS, "inputNames");
  outputs = as_obj(bridge.outputs(env, NULL, runner), K_OBJECTS, "outputNames");
  image = tensor(runner, "image", 1);
  logits = tensor(runner, "logits", 0);
  image_info = tensor_info(image);
  logits_info = tensor_info(logits);
  num_classes = logits_info.type == T_FLOAT32 ? logits_info.bytes / 4 : logits_info.bytes;
  printf("image_type=%d\nimage_bytes=%d\nimage_scale=%.9g\nimage_zero_point=%d\n",
         image_info.type, image_info.bytes, image_info.scale, image_info.zero);
  printf("logits_type=%d\nnum_classes=%d\n", logits_info.type, num_classes);

  /* States: every input but the image, paired with the same-named output. */
  for (i = 0; i < inputs->size; ++i) {
    const char* name = ((Obj**)inputs->data)[i]->text;
    int paired = 0;
    Info in, out_info;
    State* s;
    if (strcmp(name, "image") == 0) continue;
    for (j = 0; j < outputs->size; ++j) {
      if (strcmp(((Obj**)outputs->data)[j]->text, name) == 0) paired = 1;
    }
    if (!paired || num_states == 256) {
      fprintf(stderr, "state %s has no same-named output\n", name);
      return 4;
    }
    s = &states[num_states++];
    s->name = name;
    s->in = tensor(runner, name, 1);
    s->out = tensor(runner, name, 0);
    in = tensor_info(s->in);
    out_info = tensor_info(s->out);
    if (in.type != out_info.type || in.bytes != out_info.bytes) {
      fprintf(stderr, "state %s changes type or size\n", name);
      return 4;
    }
    s->type = in.type;
    s->bytes = in.bytes;
    s->in_scale = in.scale;
    s->in_zero = in.zero;
    s->out_scale = out_info.scale;
    s->out_zero = out_info.zero;
    s->current = malloc((size_t)in.bytes);
    s->next = malloc((size_t)in.bytes);
    /* Zero state: real 0, i.e. the zero point of a quantized state. */
    memset(s->current, in.scale > 0 ? in.zero : 0, (size_t)in.bytes);
  }
  printf("states=%d\n", num_states);
  printf("states_requantized=");
  for (i = 0, j = 0; i < num_states; ++i) {
    if (states[i].in_scale != states[i].out_scale || states[i].in_zero != states[i].out_zero) {
      j++;
    }
  }
  printf("%d\n", j);

  frames_file = fopen(frames_path, "rb");
  out = fopen(out_path, "wb");
  if (frames_file == NULL || out == NULL) {
    perror("frames/out");
    return 3;
  }
  frame_bytes = malloc((size_t)image_info.bytes);
  logit_bytes = malloc((size_t)logits_info.bytes);
  logit_values = malloc(sizeof(float) * (size_t)num_classes);
  for (frames = 0; fread(frame_bytes, 1, (size_t)image_info.bytes, frames_file) ==
                   (size_t)image_info.bytes; ++frames) {
    double start = now_ms();
    bridge.copy_in(env, NULL, image, direct_buffer(frame_bytes, image_info.bytes));
    no_exception("copyToTensor(image)");
    for (i = 0; i < num_states; ++i) {
      bridge.copy_in(env, NULL, states[i].in, direct_buffer(states[i].current, states[i].bytes));
      no_exception("copyToTensor(state)");
    }
    bridge.invoke(env, NULL, runner);
    no_exception("invoke");
    bridge.copy_out(env, NULL, logits, direct_buffer(logit_bytes, logits_info.bytes));
    no_exception("copyFromTensor(logits)");
    for (i = 0; i < num_states; ++i) {
      State* s = &states[i];
      unsigned char* swap;
      bridge.copy_out(env, NULL, s->out, direct_buffer(s->next, s->bytes));
      no_exception("copyFromTensor(state)");
      if (s->in_scale > 0 && (s->in_scale != s->out_scale || s->in_zero != s->out_zero)) {
        for (j = 0; j < s->bytes; ++j) {
          float real = s->out_scale * (float)(read_q(&s->next[j], s->type) - s->out_zero);
          int q = (int)floorf(real / s->in_scale + 0.5f) + s->in_zero;
          s->next[j] = (unsigned char)clamp_q(q, s->type);
        }
      }
      swap = s->current;
      s->current = s->next;
      s->next = swap;
    }
    for (j = 0; j < num_classes; ++j) {
      logit_values[j] = logits_info.type == T_FLOAT32
          ? ((float*)logit_bytes)[j]
          : logits_info.scale * (float)(read_q(&logit_bytes[j], logits_info.type) -
                                        logits_info.zero);
    }
    total_ms += now_ms() - start;
    fwrite(logit_values, sizeof(float), (size_t)num_classes, out);
  }
  fclose(frames_file);
  fclose(out);
  bridge.delete_all(env, NULL, runner, h[2], h[1], h[3], h[0]);
  printf("frames=%d\n", frames);
  printf("ms_per_frame=%.1f\n", frames > 0 ? total_ms / frames : 0.0);
  return 0;
}

/* Calls `call`, then prints and clears the exception it was expected to throw. */
#define EXPECT_THROW(label, call)                       \
  do {                                                  \
    pending[0] = '\0';                                  \
    (void)(call);                                       \
    printf("%s=%s\n", label, pending[0] ? pending : "no exception"); \
    pending[0] = '\0';                                  \
  } while (0)

static int errors(char** argv) {
  const char* apk = argv[3];
  long offset = atol(argv[4]), length = atol(argv[5]);
  void* model = map_range(apk, offset, length);
  static unsigned char garbage[4096];
  Obj* heap_obj = new_obj(K_HEAP);
  jobject heap = (jobject)heap_obj;
  Obj* handles;
  jlong *h, runner, image;
  Info info;
  unsigned char* small;

  memset(garbage, 0x5a, sizeof garbage);
  heap_obj->size = length;
  EXPECT_THROW("null_model", bridge.create(env, NULL, NULL, 1));
  EXPECT_THROW("heap_model", bridge.create(env, NULL, heap, 1));
  EXPECT_THROW("garbage_model", bridge.create(env, NULL, direct_buffer(garbage, 4096), 1));
  EXPECT_THROW("truncated_model", bridge.create(env, NULL, direct_buffer(model, length / 2), 1));
  EXPECT_THROW("zero_threads", bridge.create(env, NULL, direct_buffer(model, length), 0));

  handles = as_obj(bridge.create(env, NULL, direct_buffer(model, length), 1), K_LONGS, "create");
  no_exception("createInterpreter");
  h = handles->data;
  EXPECT_THROW("unknown_signature",
               bridge.runner(env, NULL, h[2], j_new_string_utf(env, "no_such_signature")));
  runner = bridge.runner(env, NULL, h[2], j_new_string_utf(env, "serving_default"));
  no_exception("createSignatureRunner");
  EXPECT_THROW("unknown_input", bridge.tensor(env, NULL, runner,
                                              j_new_string_utf(env, "no_such_input"), JNI_TRUE));
  EXPECT_THROW("unknown_output", bridge.tensor(env, NULL, runner,
                                               j_new_string_utf(env, "image"), JNI_FALSE));
  image = tensor(runner, "image", 1);
  info = tensor_info(image);
  small = calloc((size_t)info.bytes + 4, 1);
  EXPECT_THROW("short_input", (bridge.copy_in(env, NULL, image,
                                              direct_buffer(small, info.bytes - 1)), 0));
  EXPECT_THROW("heap_input", (bridge.copy_in(env, NULL, image, heap), 0));
  EXPECT_THROW("long_output", (bridge.copy_out(env, NULL, tensor(runner, "logits", 0),
                                               direct_buffer(small, info.bytes + 4)), 0));
  /* The interpreter still works after the refused calls. */
  bridge.copy_in(env, NULL, image, direct_buffer(small, info.bytes));
  no_exception("copyToTensor");
  bridge.invoke(env, NULL, runner);
  printf("invoke_after_errors=%s\n", pending[0] ? pending : "ok");
  bridge.delete_all(env, NULL, runner, h[2], h[1], h[3], h[0]);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  init_env();
  if (argc == 9 && strcmp(argv[1], "stream") == 0) {
    load_bridge(argv[2]);
    return stream(argv);
  }
  if (argc == 6 && strcmp(argv[1], "errors") == 0) {
    load_bridge(argv[2]);
    return errors(argv);
  }
  fprintf(stderr, "usage: bridge_driver stream BRIDGE APK OFFSET LENGTH FRAMES THREADS OUT\n"
                  "       bridge_driver errors BRIDGE APK OFFSET LENGTH\n");
  return 2;
}
