import NIOConcurrencyHelpers
import Speech
import Testing

@testable import Conversation

/// Records what a call hands its recogniser session.
final class RecordingSession: RecognitionSession {
    enum Call: Hashable {
        case feed(Int16)
        case finalize
        case close
    }
    let calls = NIOLockedValueBox<[Call]>([])
    let events: AsyncThrowingStream<RecognitionEvent, any Error> = AsyncThrowingStream { $0.finish() }
    func feed(_ samples: [Int16]) { self.calls.withLockedValue { $0.append(.feed(samples[0])) } }
    func finalize() { self.calls.withLockedValue { $0.append(.finalize) } }
    func close() { self.calls.withLockedValue { $0.append(.close) } }
}

@Suite struct RecognitionLineTests {
    @Test func whatTheCallerSaidBeforeTheSessionOpenedReachesItInOrder() {
        let line = RecognitionLine(backlogLimit: 3)
        for value in Int16(1)...5 { line.feed([value]) }  // 1 and 2 are beyond the limit
        line.finalize()
        let session = RecordingSession()
        #expect(line.attach(session))
        line.feed([6])
        line.close()
        #expect(session.calls.withLockedValue { $0 } == [.feed(3), .feed(4), .feed(5), .finalize, .feed(6), .close])
    }

    @Test func aSessionThatOpensAfterTheCallEndedIsClosedAtOnce() {
        let line = RecognitionLine()
        line.feed([1])
        line.close()
        let late = RecordingSession()
        #expect(!line.attach(late))
        #expect(late.calls.withLockedValue { $0 } == [.close])
    }
}
