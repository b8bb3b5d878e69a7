import http2 from "node:http2";
import { type ServerInterceptor as GrpcJsServerInterceptor, ServerInterceptingCall, status } from "@grpc/grpc-js";
import { MalformedRequest } from "./definition.ts";

/**
 * The HTTP/2 stream of a grpc-js call. grpc-js keeps it private; it is there on the innermost
 * call (the one the first server interceptor wraps). Undefined if grpc-js changes that.
 */
function http2StreamOf(call: unknown): http2.ServerHttp2Stream | undefined {
  const stream = (call as { stream?: Partial<http2.ServerHttp2Stream> }).stream;
  return typeof stream?.close === "function" && typeof stream.once === "function" ? (stream as http2.ServerHttp2Stream) : undefined;
}

/**
 * Once the server has ended its side of a call's stream (sent the status), resets the stream
 * with NO_ERROR if the client has not ended its side, as RFC 9113 §8.1 allows. grpc-js leaves
 * such a stream half-closed for as long as the client likes, and a half-closed stream still
 * counts against the connection's concurrent-stream limit and keeps it from going idle: a
 * client that never ends its streams (a call refused as too large, or timed out below) would
 * hold them, and the connection, forever.
 *
 * Must be the first server interceptor, to reach the stream (see {@link http2StreamOf}).
 */
export const resetUnfinishedStreamInterceptor: GrpcJsServerInterceptor = (_method, call) => {
  const stream = http2StreamOf(call);
  stream?.once("finish", () => {
    if (!stream.readableEnded && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
  return new ServerInterceptingCall(call);
};

/**
 * Ends a call whose request message has not arrived `timeoutMs` after its headers, with
 * DEADLINE_EXCEEDED. grpc-js waits for a request for as long as the client likes, and a call
 * without a deadline that never sends its message (or sends it a byte at a time) would hold
 * its stream, and the connection, forever; so would one that sends its message but never ends
 * its side of the stream (grpc-js runs a unary handler only then). A unary or server-streaming
 * call is timed to the end of its request, a client- or bidi-streaming one to its first message.
 */
export function requestArrivalInterceptor(timeoutMs: number): GrpcJsServerInterceptor {
  return (method, call) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arrived = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    return new ServerInterceptingCall(call, {
      start: (next) => {
        timer = setTimeout(() => {
          timer = undefined;
          call.sendStatus({ code: status.DEADLINE_EXCEEDED, details: `the request message did not arrive within ${timeoutMs} ms of the call's headers` });
        }, timeoutMs);
        next({
          onReceiveMessage: (message, nextMessage) => {
            // A unary or server-streaming request is complete when the client ends its side.
            if (method.requestStream) arrived();
            nextMessage(message);
          },
          onReceiveHalfClose: (nextHalfClose) => {
            arrived();
            nextHalfClose();
          },
          onCancel: arrived,
        });
      },
      sendStatus: (callStatus, nextStatus) => {
        arrived();
        nextStatus(callStatus);
      },
    });
  };
}

/** Answers a request that did not decode ({@link MalformedRequest}) with INVALID_ARGUMENT, saying why. */
export const malformedRequestInterceptor: GrpcJsServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMessage: (message, nextMessage) => {
          if (message instanceof MalformedRequest) call.sendStatus({ code: status.INVALID_ARGUMENT, details: message.message });
          else nextMessage(message);
        },
      }),
  });
