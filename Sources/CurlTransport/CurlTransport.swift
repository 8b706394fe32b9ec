import CCurl
import Dispatch
import FoundationEssentials
import LLMOpsCI
import Synchronization

/// An `HTTPTransport` on libcurl's easy interface.
///
/// Each request runs on a Dispatch worker thread, so a blocking transfer never holds a
/// thread of the cooperative pool. Certificate checks stay on. libcurl itself honours the
/// proxy variables `http_proxy`, `https_proxy`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`.
public struct CurlTransport: HTTPTransport {
    private let settings: TransportSettings
    private let caBundlePath: String?
    private let hasTrustStore: Bool
    /// The proxy variable in effect, named in connection errors; its value may hold credentials.
    private let proxyVariable: String?

    public init(settings: TransportSettings, environment: [String: String]) {
        Self.initializeLibrary
        self.settings = settings
        caBundlePath = CertificateAuthorities.bundlePath(
            configured: settings.caBundlePath,
            environment: environment,
            fileExists: { FileManager.default.fileExists(atPath: $0) },
            libraryDefault: Self.libraryDefaultBundle
        )
        let certificateFolder = (try? FileManager.default.contentsOfDirectory(atPath: "/etc/ssl/certs")) ?? []
        proxyVariable = ["https_proxy", "HTTPS_PROXY", "http_proxy", "all_proxy", "ALL_PROXY"].first { !(environment[$0] ?? "").isEmpty }
        hasTrustStore = caBundlePath != nil
            || Self.libraryDefaultBundle.map { FileManager.default.fileExists(atPath: $0) } == true
            || !certificateFolder.isEmpty
    }

    private static let initializeLibrary: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    private static let libraryDefaultBundle: String? = {
        guard let info = curl_version_info(CURLVERSION_TENTH), let path = info.pointee.cainfo else { return nil }
        return String(cString: path)
    }()

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let transfer = Transfer(request: request, settings: settings, caBundlePath: caBundlePath, hasTrustStore: hasTrustStore, proxyVariable: proxyVariable)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(with: transfer.perform())
                }
            }
        } onCancel: {
            transfer.isCancelled.store(true, ordering: .relaxed)
        }
    }
}

/// The state of one transfer, shared with libcurl's callbacks through an unmanaged pointer.
private final class Transfer: @unchecked Sendable {
    let request: HTTPRequest
    let settings: TransportSettings
    let caBundlePath: String?
    let hasTrustStore: Bool
    let proxyVariable: String?
    let isCancelled = Atomic<Bool>(false)
    var body: [UInt8] = []
    var headerLines: [String] = []
    var exceededLimit = false

    init(request: HTTPRequest, settings: TransportSettings, caBundlePath: String?, hasTrustStore: Bool, proxyVariable: String?) {
        self.request = request
        self.settings = settings
        self.caBundlePath = caBundlePath
        self.hasTrustStore = hasTrustStore
        self.proxyVariable = proxyVariable
    }

    func perform() -> Result<HTTPResponse, Error> {
        guard let handle = curl_easy_init() else {
            return .failure(TransportError(kind: .other, detail: "libcurl could not create a handle"))
        }
        defer { curl_easy_cleanup(handle) }

        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        // libcurl adds `Expect: 100-continue` to large bodies, which costs a round trip.
        headerList = curl_slist_append(headerList, "Expect:")

        let context = Unmanaged.passUnretained(self).toOpaque()
        llmops_curl_set_string(handle, CURLOPT_URL, request.url)
        llmops_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
        llmops_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        llmops_curl_set_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        llmops_curl_set_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        llmops_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(settings.connectTimeout))
        llmops_curl_set_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(settings.requestTimeout))
        llmops_curl_set_string(handle, CURLOPT_USERAGENT, settings.userAgent)
        llmops_curl_set_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        llmops_curl_set_slist(handle, CURLOPT_HTTPHEADER, headerList)
        if let caBundlePath {
            llmops_curl_set_string(handle, CURLOPT_CAINFO, caBundlePath)
        }

        switch request.method {
        case "GET":
            llmops_curl_set_long(handle, CURLOPT_HTTPGET, 1)
        case "HEAD":
            llmops_curl_set_long(handle, CURLOPT_NOBODY, 1)
        default:
            llmops_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if let requestBody = request.body {
            llmops_curl_set_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(requestBody.count))
            // COPYPOSTFIELDS copies the bytes, so the buffer only has to live during the call.
            var bytes = requestBody
            bytes.append(0)
            bytes.withUnsafeMutableBytes { buffer in
                _ = llmops_curl_set_pointer(handle, CURLOPT_COPYPOSTFIELDS, buffer.baseAddress)
            }
        }

        llmops_curl_set_write_function(handle) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard transfer.body.count + length <= transfer.settings.maxResponseBytes else {
                transfer.exceededLimit = true
                return 0
            }
            if let data {
                data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                    transfer.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: length))
                }
            }
            return length
        }
        llmops_curl_set_pointer(handle, CURLOPT_WRITEDATA, context)

        llmops_curl_set_header_function(handle) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            if let data {
                let line = data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                    String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
                }
                // A new status line starts the headers of the next response (a proxy's CONNECT reply).
                if line.hasPrefix("HTTP/") {
                    transfer.headerLines.removeAll()
                }
                transfer.headerLines.append(line)
            }
            return length
        }
        llmops_curl_set_pointer(handle, CURLOPT_HEADERDATA, context)

        llmops_curl_set_long(handle, CURLOPT_NOPROGRESS, 0)
        llmops_curl_set_progress_function(handle) { context, _, _, _, _ in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.isCancelled.load(ordering: .relaxed) ? 1 : 0
        }
        llmops_curl_set_pointer(handle, CURLOPT_XFERINFODATA, context)

        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            return .failure(transportError(for: code))
        }

        var status = 0
        llmops_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(HTTPResponse(status: status, headers: parsedHeaders(), body: body))
    }

    private func parsedHeaders() -> [(name: String, value: String)] {
        headerLines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = line[..<colon].trimmingSpaces
            let value = line[line.index(after: colon)...].trimmingSpaces
            return (name: name, value: value)
        }
    }

    private func transportError(for code: CURLcode) -> TransportError {
        let host = hostOf(request.url)
        let reason = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_ABORTED_BY_CALLBACK where isCancelled.load(ordering: .relaxed):
            return TransportError(kind: .cancelled, detail: "The request to \(host) was cancelled.")
        case CURLE_WRITE_ERROR where exceededLimit:
            return TransportError(
                kind: .responseTooLarge,
                detail: "The response from \(host) is larger than \(settings.maxResponseBytes >> 20) MiB."
            )
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY,
            CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE:
            // libcurl reports a refused proxy like a refused server, so name both.
            let proxyHint = proxyVariable.map { " The request went through the proxy in \($0) (unless NO_PROXY matches); check that it is reachable too." } ?? ""
            return TransportError(kind: .connectionFailed, detail: "Could not reach \(host): \(reason).\(proxyHint)")
        case CURLE_OPERATION_TIMEDOUT:
            return TransportError(kind: .timedOut, detail: "The request to \(host) timed out: \(reason).")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CIPHER:
            guard hasTrustStore else {
                return TransportError(
                    kind: .tlsFailed,
                    detail: "TLS with \(host) failed: No trust store found. None of \(CertificateAuthorities.wellKnownBundles.joined(separator: ", ")) exists "
                        + "and SSL_CERT_FILE is not set. Install ca-certificates in the job image, or set SSL_CERT_FILE or server.ca_bundle to a PEM bundle."
                )
            }
            return TransportError(
                kind: .tlsFailed,
                detail: "TLS with \(host) failed: \(reason). If the server uses a private certificate authority, "
                    + "set server.ca_bundle or SSL_CERT_FILE to its PEM file."
            )
        default:
            return TransportError(kind: .other, detail: "The request to \(host) failed: \(reason).")
        }
    }
}

private func milliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
}

private func hostOf(_ url: String) -> String {
    guard let schemeEnd = url.firstRange(of: "://") else { return url }
    let rest = url[schemeEnd.upperBound...]
    let authority = rest.prefix { $0 != "/" && $0 != "?" }
    // Drop any user:password@ part so that it never reaches a message.
    if let at = authority.lastIndex(of: "@") {
        return String(authority[authority.index(after: at)...])
    }
    return String(authority)
}

private extension Substring {
    var trimmingSpaces: String {
        // Character.isWhitespace also matches "\r\n", which Swift reads as one character.
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
