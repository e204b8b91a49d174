/*
 * JNI bridge from org.movinet.demo.core.TfLiteBridge to the TFLite C API.
 *
 * The C API prototypes are declared here rather than taken from TensorFlow's
 * headers, so the bridge builds with nothing but a C compiler and jni.h. The
 * same file is built twice: with gcc for x86_64 Linux (JVM tests) and with
 * clang for aarch64-linux-android (the APK), both against liblitert-lm.so.
 *
 * The Android build links without libc (there is no NDK sysroot here), so this
 * file calls only JNI functions and TfLite* functions: no malloc, memset,
 * strlen or printf. Every failure becomes a Java exception whose message names
 * the C API call that failed.
 *
 * Handles are raw pointers passed to Java as jlong. Java owns their lifetime
 * (TfLiteBridge.deleteAll) and serialises calls on one interpreter.
 */
#include <jni.h>
#include <stddef.h>
#include <stdint.h>

/* ---- TFLite C API (tensorflow/lite/core/c/c_api.h), declared by hand ---- */
typedef struct TfLiteModel TfLiteModel;
typedef struct TfLiteInterpreterOptions TfLiteInterpreterOptions;
typedef struct TfLiteInterpreter TfLiteInterpreter;
typedef struct TfLiteSignatureRunner TfLiteSignatureRunner;
typedef struct TfLiteTensor TfLiteTensor;
typedef struct TfLiteDelegate TfLiteDelegate;
typedef int TfLiteStatus; /* kTfLiteOk == 0 */
typedef int TfLiteType;   /* enum TfLiteType; kTfLiteFloat32 == 1 */
/* Affine quantization of a tensor: real = scale * (q - zero_point); scale 0 = not quantized. */
typedef struct {
  float scale;
  int32_t zero_point;
} TfLiteQuantizationParams;

extern const char* TfLiteVersion(void);
extern TfLiteModel* TfLiteModelCreate(const void* model_data, size_t model_size);
extern void TfLiteModelDelete(TfLiteModel* model);
extern TfLiteInterpreterOptions* TfLiteInterpreterOptionsCreate(void);
extern void TfLiteInterpreterOptionsDelete(TfLiteInterpreterOptions* options);
extern void TfLiteInterpreterOptionsSetNumThreads(TfLiteInterpreterOptions* options,
                                                  int32_t num_threads);
extern TfLiteInterpreter* TfLiteInterpreterCreate(const TfLiteModel* model,
                                                  const TfLiteInterpreterOptions* options);
extern void TfLiteInterpreterDelete(TfLiteInterpreter* interpreter);
extern int32_t TfLiteInterpreterGetSignatureCount(const TfLiteInterpreter* interpreter);
extern const char* TfLiteInterpreterGetSignatureKey(const TfLiteInterpreter* interpreter,
                                                    int32_t signature_index);
extern TfLiteSignatureRunner* TfLiteInterpreterGetSignatureRunner(
    const TfLiteInterpreter* interpreter, const char* signature_key);
extern size_t TfLiteSignatureRunnerGetInputCount(const TfLiteSignatureRunner* runner);
extern const char* TfLiteSignatureRunnerGetInputName(const TfLiteSignatureRunner* runner,
                                                     int32_t input_index);
extern size_t TfLiteSignatureRunnerGetOutputCount(const TfLiteSignatureRunner* runner);
extern const char* TfLiteSignatureRunnerGetOutputName(const TfLiteSignatureRunner* runner,
                                                      int32_t output_index);
extern TfLiteStatus TfLiteSignatureRunnerAllocateTensors(TfLiteSignatureRunner* runner);
extern TfLiteTensor* TfLiteSignatureRunnerGetInputTensor(TfLiteSignatureRunner* runner,
                                                         const char* input_name);
extern const TfLiteTensor* TfLiteSignatureRunnerGetOutputTensor(
    const TfLiteSignatureRunner* runner, const char* output_name);
extern TfLiteStatus TfLiteSignatureRunnerInvoke(TfLiteSignatureRunner* runner);
extern void TfLiteSignatureRunnerDelete(TfLiteSignatureRunner* runner);
extern TfLiteType TfLiteTensorType(const TfLiteTensor* tensor);
extern int32_t TfLiteTensorNumDims(const TfLiteTensor* tensor);
extern int32_t TfLiteTensorDim(const TfLiteTensor* tensor, int32_t dim_index);
extern size_t TfLiteTensorByteSize(const TfLiteTensor* tensor);
extern TfLiteQuantizationParams TfLiteTensorQuantizationParams(const TfLiteTensor* tensor);
extern TfLiteStatus TfLiteTensorCopyFromBuffer(TfLiteTensor* tensor, const void* input_data,
                                               size_t input_data_size);
extern TfLiteStatus TfLiteTensorCopyToBuffer(const TfLiteTensor* output_tensor,
                                             void* output_data, size_t output_data_size);
extern void TfLiteInterpreterOptionsAddDelegate(TfLiteInterpreterOptions* options,
                                                TfLiteDelegate* delegate);

/* XNNPACK delegate (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h). Its options struct
 * grows between releases; only its first field, int32_t num_threads, is touched here. The
 * struct is declared larger than any release's (256 bytes): the runtime fills and reads only
 * its own size, and a struct this large is returned through a caller-provided buffer on both
 * x86_64 and AArch64, so the over-sized declaration is ABI-safe. */
typedef struct {
  int32_t num_threads;
  uint32_t flags;
  uint64_t rest[31];
} XnnpackOptions;
extern XnnpackOptions TfLiteXNNPackDelegateOptionsDefault(void);
extern TfLiteDelegate* TfLiteXNNPackDelegateCreate(const XnnpackOptions* options);
extern void TfLiteXNNPackDelegateDelete(TfLiteDelegate* delegate);

/* ---- helpers ---- */

#define PTR(handle) ((void*)(intptr_t)(handle))
#define HANDLE(ptr) ((jlong)(intptr_t)(ptr))

static void throw_state(JNIEnv* env, const char* message) {
  jclass cls = (*env)->FindClass(env, "java/lang/IllegalStateException");
  if (cls != NULL) {
    (*env)->ThrowNew(env, cls, message);
  }
}

static void throw_argument(JNIEnv* env, const char* message) {
  jclass cls = (*env)->FindClass(env, "java/lang/IllegalArgumentException");
  if (cls != NULL) {
    (*env)->ThrowNew(env, cls, message);
  }
}

/* Returns the direct buffer's address and its capacity in bytes, or NULL with
 * an IllegalArgumentException pending. */
static void* direct_address(JNIEnv* env, jobject buffer, jlong* capacity) {
  void* address;
  if (buffer == NULL) {
    throw_argument(env, "buffer is null, expected a direct ByteBuffer");
    return NULL;
  }
  address = (*env)->GetDirectBufferAddress(env, buffer);
  *capacity = (*env)->GetDirectBufferCapacity(env, buffer);
  if (address == NULL || *capacity < 0) {
    throw_argument(env, "buffer is not a direct ByteBuffer (use ByteBuffer.allocateDirect "
                        "or a mapped file)");
    return NULL;
  }
  return address;
}

static jobjectArray to_string_array(JNIEnv* env, const char** names, jsize count) {
  jclass string_class = (*env)->FindClass(env, "java/lang/String");
  jobjectArray array;
  jsize i;
  if (string_class == NULL) return NULL;
  array = (*env)->NewObjectArray(env, count, string_class, NULL);
  if (array == NULL) return NULL;
  for (i = 0; i < count; ++i) {
    jstring name = (*env)->NewStringUTF(env, names[i] != NULL ? names[i] : "");
    if (name == NULL) return NULL;
    (*env)->SetObjectArrayElement(env, array, i, name);
    (*env)->DeleteLocalRef(env, name);
  }
  return array;
}

/* ---- org.movinet.demo.core.TfLiteBridge natives ---- */

JNIEXPORT jstring JNICALL
Java_org_movinet_demo_core_TfLiteBridge_version(JNIEnv* env, jclass cls) {
  (void)cls;
  return (*env)->NewStringUTF(env, TfLiteVersion());
}

/* Returns {model, options, interpreter, delegate}. The model bytes must stay alive (Java
 * keeps the ByteBuffer) for as long as the model handle. The interpreter runs on the CPU
 * through an explicitly added XNNPACK delegate with the same thread count; the C API's
 * interpreter does not add one by itself in this runtime build (measured: 3x slower). */
JNIEXPORT jlongArray JNICALL
Java_org_movinet_demo_core_TfLiteBridge_createInterpreter(JNIEnv* env, jclass cls,
                                                          jobject model_buffer,
                                                          jint num_threads) {
  jlong capacity = 0;
  void* data;
  TfLiteModel* model;
  TfLiteInterpreterOptions* options;
  TfLiteInterpreter* interpreter;
  TfLiteDelegate* delegate;
  XnnpackOptions xnnpack_options;
  jlong handles[4];
  jlongArray result;
  (void)cls;

  data = direct_address(env, model_buffer, &capacity);
  if (data == NULL) return NULL;
  if (num_threads < 1) {
    throw_argument(env, "numThreads must be >= 1");
    return NULL;
  }
  model = TfLiteModelCreate(data, (size_t)capacity);
  if (model == NULL) {
    throw_state(env, "TfLiteModelCreate failed: the buffer is not a valid .tflite flatbuffer");
    return NULL;
  }
  xnnpack_options = TfLiteXNNPackDelegateOptionsDefault();
  xnnpack_options.num_threads = num_threads;
  delegate = TfLiteXNNPackDelegateCreate(&xnnpack_options);
  if (delegate == NULL) {
    TfLiteModelDelete(model);
    throw_state(env, "TfLiteXNNPackDelegateCreate failed");
    return NULL;
  }
  options = TfLiteInterpreterOptionsCreate();
  if (options == NULL) {
    TfLiteXNNPackDelegateDelete(delegate);
    TfLiteModelDelete(model);
    throw_state(env, "TfLiteInterpreterOptionsCreate failed");
    return NULL;
  }
  /* Threads for the ops XNNPACK does not take, and for XNNPACK through its own options. */
  TfLiteInterpreterOptionsSetNumThreads(options, num_threads);
  TfLiteInterpreterOptionsAddDelegate(options, delegate);
  interpreter = TfLiteInterpreterCreate(model, options);
  if (interpreter == NULL) {
    TfLiteInterpreterOptionsDelete(options);
    TfLiteXNNPackDelegateDelete(delegate);
    TfLiteModelDelete(model);
    throw_state(env, "TfLiteInterpreterCreate failed (unsupported op or bad model; "
                     "see the runtime's log)");
    return NULL;
  }
  handles[0] = HANDLE(model);
  handles[1] = HANDLE(options);
  handles[2] = HANDLE(interpreter);
  handles[3] = HANDLE(delegate);
  result = (*env)->NewLongArray(env, 4);
  if (result == NULL) return NULL;
  (*env)->SetLongArrayRegion(env, result, 0, 4, handles);
  return result;
}

JNIEXPORT jobjectArray JNICALL
Java_org_movinet_demo_core_TfLiteBridge_signatureKeys(JNIEnv* env, jclass cls,
                                                      jlong interpreter) {
  const char* keys[64];
  int32_t count = TfLiteInterpreterGetSignatureCount(PTR(interpreter));
  int32_t i;
  (void)cls;
  if (count > 64) count = 64;
  for (i = 0; i < count; ++i) {
    keys[i] = TfLiteInterpreterGetSignatureKey(PTR(interpreter), i);
  }
  return to_string_array(env, keys, count);
}

/* Returns the signature runner with its tensors allocated. */
JNIEXPORT jlong JNICALL
Java_org_movinet_demo_core_TfLiteBridge_createSignatureRunner(JNIEnv* env, jclass cls,
                                                              jlong interpreter,
                                                              jstring signature_key) {
  const char* key;
  TfLiteSignatureRunner* runner;
  (void)cls;
  key = (*env)->GetStringUTFChars(env, signature_key, NULL);
  if (key == NULL) return 0;
  runner = TfLiteInterpreterGetSignatureRunner(PTR(interpreter), key);
  (*env)->ReleaseStringUTFChars(env, signature_key, key);
  if (runner == NULL) {
    throw_argument(env, "TfLiteInterpreterGetSignatureRunner found no such signature key");
    return 0;
  }
  if (TfLiteSignatureRunnerAllocateTensors(runner) != 0) {
    TfLiteSignatureRunnerDelete(runner);
    throw_state(env, "TfLiteSignatureRunnerAllocateTensors failed");
    return 0;
  }
  return HANDLE(runner);
}

static jobjectArray names_of(JNIEnv* env, jlong runner, int inputs) {
  const char* names[1024];
  size_t count = inputs ? TfLiteSignatureRunnerGetInputCount(PTR(runner))
                        : TfLiteSignatureRunnerGetOutputCount(PTR(runner));
  size_t i;
  if (count > 1024) {
    throw_state(env, "signature has more than 1024 inputs or outputs");
    return NULL;
  }
  for (i = 0; i < count; ++i) {
    names[i] = inputs ? TfLiteSignatureRunnerGetInputName(PTR(runner), (int32_t)i)
                      : TfLiteSignatureRunnerGetOutputName(PTR(runner), (int32_t)i);
  }
  return to_string_array(env, names, (jsize)count);
}

JNIEXPORT jobjectArray JNICALL
Java_org_movinet_demo_core_TfLiteBridge_inputNames(JNIEnv* env, jclass cls, jlong runner) {
  (void)cls;
  return names_of(env, runner, 1);
}

JNIEXPORT jobjectArray JNICALL
Java_org_movinet_demo_core_TfLiteBridge_outputNames(JNIEnv* env, jclass cls, jlong runner) {
  (void)cls;
  return names_of(env, runner, 0);
}

/* Returns the input (is_input) or output tensor of that name; valid until the
 * runner is deleted. */
JNIEXPORT jlong JNICALL
Java_org_movinet_demo_core_TfLiteBridge_tensor(JNIEnv* env, jclass cls, jlong runner,
                                               jstring name, jboolean is_input) {
  const char* utf;
  const TfLiteTensor* tensor;
  (void)cls;
  utf = (*env)->GetStringUTFChars(env, name, NULL);
  if (utf == NULL) return 0;
  tensor = is_input ? TfLiteSignatureRunnerGetInputTensor(PTR(runner), utf)
                    : TfLiteSignatureRunnerGetOutputTensor(PTR(runner), utf);
  (*env)->ReleaseStringUTFChars(env, name, utf);
  if (tensor == NULL) {
    throw_argument(env, is_input ? "signature has no input of that name"
                                 : "signature has no output of that name");
    return 0;
  }
  return HANDLE(tensor);
}

/* Returns {type, byteSize, rank, scaleBits, zeroPoint, dim0, dim1, ...}: scaleBits is the
 * IEEE-754 bit pattern of the quantization scale (Float.intBitsToFloat in Java; 0 when the
 * tensor is not quantized). */
JNIEXPORT jintArray JNICALL
Java_org_movinet_demo_core_TfLiteBridge_tensorInfo(JNIEnv* env, jclass cls, jlong tensor) {
  jint info[5 + 16];
  int32_t rank = TfLiteTensorNumDims(PTR(tensor));
  int32_t i;
  TfLiteQuantizationParams quantization;
  union {
    float f;
    jint bits;
  } scale;
  jintArray result;
  (void)cls;
  if (rank < 0 || rank > 16) {
    throw_state(env, "tensor rank is outside [0, 16]");
    return NULL;
  }
  quantization = TfLiteTensorQuantizationParams(PTR(tensor));
  scale.f = quantization.scale;
  info[0] = (jint)TfLiteTensorType(PTR(tensor));
  info[1] = (jint)TfLiteTensorByteSize(PTR(tensor));
  info[2] = (jint)rank;
  info[3] = scale.bits;
  info[4] = (jint)quantization.zero_point;
  for (i = 0; i < rank; ++i) {
    info[5 + i] = (jint)TfLiteTensorDim(PTR(tensor), i);
  }
  result = (*env)->NewIntArray(env, 5 + rank);
  if (result == NULL) return NULL;
  (*env)->SetIntArrayRegion(env, result, 0, 5 + rank, info);
  return result;
}

/* Copies the whole direct buffer (capacity must equal the tensor's byte size)
 * into the input tensor. */
JNIEXPORT void JNICALL
Java_org_movinet_demo_core_TfLiteBridge_copyToTensor(JNIEnv* env, jclass cls, jlong tensor,
                                                     jobject buffer) {
  jlong capacity = 0;
  void* data;
  (void)cls;
  data = direct_address(env, buffer, &capacity);
  if (data == NULL) return;
  if ((size_t)capacity != TfLiteTensorByteSize(PTR(tensor))) {
    throw_argument(env, "buffer capacity differs from the input tensor's byte size");
    return;
  }
  if (TfLiteTensorCopyFromBuffer(PTR(tensor), data, (size_t)capacity) != 0) {
    throw_state(env, "TfLiteTensorCopyFromBuffer failed");
  }
}

JNIEXPORT void JNICALL
Java_org_movinet_demo_core_TfLiteBridge_copyFromTensor(JNIEnv* env, jclass cls, jlong tensor,
                                                       jobject buffer) {
  jlong capacity = 0;
  void* data;
  (void)cls;
  data = direct_address(env, buffer, &capacity);
  if (data == NULL) return;
  if ((size_t)capacity != TfLiteTensorByteSize(PTR(tensor))) {
    throw_argument(env, "buffer capacity differs from the output tensor's byte size");
    return;
  }
  if (TfLiteTensorCopyToBuffer(PTR(tensor), data, (size_t)capacity) != 0) {
    throw_state(env, "TfLiteTensorCopyToBuffer failed");
  }
}

JNIEXPORT void JNICALL
Java_org_movinet_demo_core_TfLiteBridge_invoke(JNIEnv* env, jclass cls, jlong runner) {
  (void)cls;
  if (TfLiteSignatureRunnerInvoke(PTR(runner)) != 0) {
    throw_state(env, "TfLiteSignatureRunnerInvoke failed");
  }
}

/* Deletes in reverse creation order (the delegate after the interpreter that uses it); a
 * zero handle is skipped. */
JNIEXPORT void JNICALL
Java_org_movinet_demo_core_TfLiteBridge_deleteAll(JNIEnv* env, jclass cls, jlong runner,
                                                  jlong interpreter, jlong options,
                                                  jlong delegate, jlong model) {
  (void)env;
  (void)cls;
  if (runner != 0) TfLiteSignatureRunnerDelete(PTR(runner));
  if (interpreter != 0) TfLiteInterpreterDelete(PTR(interpreter));
  if (options != 0) TfLiteInterpreterOptionsDelete(PTR(options));
  if (delegate != 0) TfLiteXNNPackDelegateDelete(PTR(delegate));
  if (model != 0) TfLiteModelDelete(PTR(model));
}
