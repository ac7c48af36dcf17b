/* Status strings, OpenCL error names, the error text and the log callback. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define WL_STR_(x) #x
#define WL_STR(x) WL_STR_(x)

const char *wl_version(void)
{
    return WL_STR(WL_API_VERSION_MAJOR) "." WL_STR(WL_API_VERSION_MINOR) "." WL_STR(WL_API_VERSION_PATCH);
}

const char *wl_status_string(wl_status s)
{
    switch (s) {
    case WL_SUCCESS: return "success";
    case WL_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case WL_ERROR_NO_DEVICE: return "no matching OpenCL device";
    case WL_ERROR_KERNEL_SOURCE: return "kernel sources could not be read";
    case WL_ERROR_BUILD: return "OpenCL program build failed";
    case WL_ERROR_OUT_OF_MEMORY: return "out of memory";
    case WL_ERROR_NONFINITE: return "NaN or Inf in the input";
    case WL_ERROR_OPENCL: return "OpenCL error";
    case WL_ERROR_FILE: return "file error or invalid model file";
    }
    return "unknown status";
}

const char *wl_cl_error_name(cl_int err)
{
    switch (err) {
#define NAME(e)                                                                                                        \
    case e: return #e
        NAME(CL_SUCCESS);
        NAME(CL_DEVICE_NOT_FOUND);
        NAME(CL_DEVICE_NOT_AVAILABLE);
        NAME(CL_COMPILER_NOT_AVAILABLE);
        NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE);
        NAME(CL_OUT_OF_RESOURCES);
        NAME(CL_OUT_OF_HOST_MEMORY);
        NAME(CL_PROFILING_INFO_NOT_AVAILABLE);
        NAME(CL_MEM_COPY_OVERLAP);
        NAME(CL_IMAGE_FORMAT_MISMATCH);
        NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED);
        NAME(CL_BUILD_PROGRAM_FAILURE);
        NAME(CL_MAP_FAILURE);
        NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET);
        NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
        NAME(CL_COMPILE_PROGRAM_FAILURE);
        NAME(CL_LINKER_NOT_AVAILABLE);
        NAME(CL_LINK_PROGRAM_FAILURE);
        NAME(CL_DEVICE_PARTITION_FAILED);
        NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE);
        NAME(CL_INVALID_VALUE);
        NAME(CL_INVALID_DEVICE_TYPE);
        NAME(CL_INVALID_PLATFORM);
        NAME(CL_INVALID_DEVICE);
        NAME(CL_INVALID_CONTEXT);
        NAME(CL_INVALID_QUEUE_PROPERTIES);
        NAME(CL_INVALID_COMMAND_QUEUE);
        NAME(CL_INVALID_HOST_PTR);
        NAME(CL_INVALID_MEM_OBJECT);
        NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR);
        NAME(CL_INVALID_IMAGE_SIZE);
        NAME(CL_INVALID_SAMPLER);
        NAME(CL_INVALID_BINARY);
        NAME(CL_INVALID_BUILD_OPTIONS);
        NAME(CL_INVALID_PROGRAM);
        NAME(CL_INVALID_PROGRAM_EXECUTABLE);
        NAME(CL_INVALID_KERNEL_NAME);
        NAME(CL_INVALID_KERNEL_DEFINITION);
        NAME(CL_INVALID_KERNEL);
        NAME(CL_INVALID_ARG_INDEX);
        NAME(CL_INVALID_ARG_VALUE);
        NAME(CL_INVALID_ARG_SIZE);
        NAME(CL_INVALID_KERNEL_ARGS);
        NAME(CL_INVALID_WORK_DIMENSION);
        NAME(CL_INVALID_WORK_GROUP_SIZE);
        NAME(CL_INVALID_WORK_ITEM_SIZE);
        NAME(CL_INVALID_GLOBAL_OFFSET);
        NAME(CL_INVALID_EVENT_WAIT_LIST);
        NAME(CL_INVALID_EVENT);
        NAME(CL_INVALID_OPERATION);
        NAME(CL_INVALID_GL_OBJECT);
        NAME(CL_INVALID_BUFFER_SIZE);
        NAME(CL_INVALID_MIP_LEVEL);
        NAME(CL_INVALID_GLOBAL_WORK_SIZE);
        NAME(CL_INVALID_PROPERTY);
        NAME(CL_INVALID_IMAGE_DESCRIPTOR);
        NAME(CL_INVALID_COMPILER_OPTIONS);
        NAME(CL_INVALID_LINKER_OPTIONS);
        NAME(CL_INVALID_DEVICE_PARTITION_COUNT);
#undef NAME
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "unknown OpenCL error";
}

/* wl_context_create and wl_select_device have no context to hold their detail. */
static _Thread_local char thread_error[WL_ERROR_SIZE];

char *wl_thread_error(void) { return thread_error; }

static void emit(const wl_context *c, const char *message)
{
    if (c && c->log)
        c->log(c->log_user, message);
}

void wl_log(const wl_context *c, const char *fmt, ...)
{
    if (!c || !c->log)
        return;
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    emit(c, message);
}

wl_status wl_fail(wl_context *c, wl_status s, const char *fmt, ...)
{
    char *dst = c ? c->error : thread_error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, WL_ERROR_SIZE, fmt, ap);
    va_end(ap);
    if (c && c->log)
        emit(c, dst);
    return s;
}

wl_status wl_cl_status(cl_int err)
{
    switch (err) {
    case CL_SUCCESS: return WL_SUCCESS;
    case CL_OUT_OF_HOST_MEMORY:
    case CL_OUT_OF_RESOURCES:
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return WL_ERROR_OUT_OF_MEMORY;
    default: return WL_ERROR_OPENCL;
    }
}

wl_status wl_fail_cl(wl_context *c, cl_int err, const char *what)
{
    return wl_fail(c, wl_cl_status(err), "%s failed: %s (%d)", what, wl_cl_error_name(err), (int)err);
}

const char *wl_context_last_error(const wl_context *c) { return c ? c->error : thread_error; }

double wl_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
